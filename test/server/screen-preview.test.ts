// The console's first picture (src/server/console/screen-preview.ts) against a stand-in for QEMU's QMP that writes
// the screendump file itself: pages asking together cost QEMU one screendump, a picture is served again for a moment,
// a failure is remembered, an oversized picture is refused, and no file is left in the VM's folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { MAX_PICTURE_BYTES, ScreenPreviews } from '../../src/server/console/screen-preview.ts';
import type { ServerContext } from '../../src/server/context.ts';
import type { VmRecord } from '../../src/vm/records.ts';

function setup(write: (file: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'oshot-'));
  let calls = 0;
  const ctx = {
    config: { consolePreview: true },
    vms: {
      paths: () => ({ dir }),
      qmp: () => ({
        execute: async (cmd: string, args: { filename: string }) => {
          assert.equal(cmd, 'screendump');
          calls++;
          await new Promise((r) => setTimeout(r, 20));
          write(args.filename);
          return {};
        },
      }),
    },
  } as unknown as ServerContext;
  const log = { warn: () => undefined } as unknown as FastifyBaseLogger;
  const vm = { id: 'v1', name: 'v', state: 'running', ownerId: 'u' } as VmRecord;
  return { previews: new ScreenPreviews(ctx, log), vm, dir, calls: () => calls,
    done: () => rmSync(dir, { recursive: true, force: true }) };
}

test('pages asking together get one screendump; it is served again for a moment; no file is left', async () => {
  const s = setup((f) => writeFileSync(f, 'PNG-1'));
  try {
    const got = await Promise.all(Array.from({ length: 5 }, () => s.previews.get(s.vm)));
    assert.deepEqual(got.map(String), Array(5).fill('PNG-1'));
    assert.equal(String(await s.previews.get(s.vm)), 'PNG-1');
    assert.equal(s.calls(), 1);
    assert.deepEqual(readdirSync(s.dir), []);
    await new Promise((r) => setTimeout(r, 1100));
    await s.previews.get(s.vm);
    assert.equal(s.calls(), 2, 'a new picture after a second');
  } finally {
    s.done();
  }
});

test('an oversized picture is refused (503) and removed; the failure is not retried at once', async () => {
  const s = setup((f) => writeFileSync(f, Buffer.alloc(MAX_PICTURE_BYTES + 1)));
  try {
    await assert.rejects(s.previews.get(s.vm), (e: { status?: number }) => e.status === 503);
    await assert.rejects(s.previews.get(s.vm), (e: { status?: number }) => e.status === 503);
    assert.equal(s.calls(), 1, 'remembered, not asked again');
    assert.deepEqual(readdirSync(s.dir), []);
  } finally {
    s.done();
  }
});
