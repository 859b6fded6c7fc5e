// `oriel checkpoint ...` against a real server and a real tiny guest: take, list, restore in place and as a new VM,
// verify (and detect corruption), schedule with retention, prune with a dry run.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, openSync, readSync, writeSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { ensureTinyImage } from '../helpers/images.ts';

const BIN = join(import.meta.dirname, '../../bin/oriel.js');

describe('oriel checkpoint', () => {
  let t: TestServer;
  const oriel = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, [BIN, ...args], {
        env: { ...process.env, ORIEL_URL: t.url, ORIEL_TOKEN: t.adminToken },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '', stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  const exec = async (vm: string, script: string) => {
    const r = await t.admin.post(`/api/vms/${vm}/exec`, { argv: ['sh', '-c', script], timeoutSec: 90 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.stdout as string;
  };
  // The guest's state at an instant: a file in tmpfs (RAM only), a counter, and the disk's first bytes.
  const write = (vm: string, v: string) =>
    exec(
      vm,
      `echo ${v} > /tmp/mark; echo ${v} | dd of=/dev/vda bs=512 count=1 conv=sync oflag=direct 2>/dev/null; sync`,
    );
  const read = (vm: string) =>
    exec(vm, 'cat /tmp/mark; dd if=/dev/vda bs=512 count=1 iflag=direct 2>/dev/null | head -1');

  before(async () => {
    await ensureTinyImage();
    t = await startTestServer();
    assert.equal((await t.admin.post('/api/vms', { name: 'ck', image: 'tiny', memoryMiB: 160 })).status, 201);
    assert.equal((await t.admin.post('/api/vms/ck/start')).body.state, 'running');
  });
  after(async () => { await t.destroy(); });

  let first = '';

  test('create takes a live checkpoint: milliseconds of pause, the VM keeps running', async () => {
    await write('ck', 'one');
    const r = await oriel(['checkpoint', 'create', 'ck', '--label', 'first', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const c = JSON.parse(r.stdout);
    first = c.id;
    assert.equal(c.kind, 'manual');
    assert.equal(c.label, 'first');
    assert.ok(c.pauseMs !== null && c.pauseMs < 500, `pause ${c.pauseMs} ms`);
    assert.equal((await t.admin.get('/api/vms/ck')).body.state, 'running');
    const list = JSON.parse((await oriel(['checkpoint', 'list', 'ck', '--json'])).stdout);
    assert.deepEqual(list.map((x: { id: string }) => x.id), [first]);
    const shown = JSON.parse((await oriel(['checkpoint', 'show', 'ck', first, '--json'])).stdout);
    assert.equal(shown.wasRunning, true);
  });

  test('restore in place brings back RAM and disk of the instant; restore --as makes a new VM', async () => {
    await write('ck', 'two');
    assert.equal(await read('ck'), 'two\ntwo\n');
    const r = await oriel(['checkpoint', 'restore', 'ck', first]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /VM 'ck' restored from checkpoint/);
    assert.equal((await t.admin.get('/api/vms/ck')).body.state, 'running');
    assert.equal(await read('ck'), 'one\none\n');
    const n = await oriel(['checkpoint', 'restore', 'ck', first, '--as', 'ck-copy']);
    assert.equal(n.code, 0, n.stderr);
    assert.equal((await t.admin.get('/api/vms/ck-copy')).body.state, 'running');
    assert.equal(await read('ck-copy'), 'one\none\n');
    await write('ck-copy', 'copy');
    assert.equal(await read('ck'), 'one\none\n', 'the copy has its own disk and RAM');
    assert.equal((await t.admin.post('/api/vms/ck-copy/force-stop')).body.state, 'stopped');
    assert.equal((await t.admin.delete('/api/vms/ck-copy')).status, 204);
  });

  test('schedule: periodic checkpoints, pruned by keep-last; the manual one survives', async () => {
    const bad = await oriel(['checkpoint', 'schedule', 'ck', '--every', 'sometimes']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--every must be an interval/);
    const keepless = await oriel(['checkpoint', 'schedule', 'ck', '--every', '5m']);
    assert.notEqual(keepless.code, 0);
    assert.match(keepless.stderr, /needs at least one keep rule/);
    const s = await oriel(['checkpoint', 'schedule', 'ck', '--every', '3s', '--keep-last', '1', '--json']);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(JSON.parse(s.stdout).every, '3s');
    let scheduledOps = 0;
    for (let i = 0; i < 90 && scheduledOps < 3; i++) {
      await sleep(1000);
      const ops = (await t.admin.get('/api/operations?vm=ck')).body as {
        kind: string;
        status: string;
        user: string | null;
      }[];
      scheduledOps = ops.filter(
        (o) => o.kind === 'checkpoint.create' && o.user === null && o.status === 'succeeded',
      ).length;
    }
    assert.ok(scheduledOps >= 3, `only ${scheduledOps} scheduled checkpoints ran`);
    assert.equal((await oriel(['checkpoint', 'schedule', 'ck', '--off'])).code, 0);
    await sleep(4000); // a run that had started finishes (and prunes)
    const list = JSON.parse((await oriel(['checkpoint', 'list', 'ck', '--json'])).stdout) as {
      id: string;
      kind: string;
    }[];
    assert.ok(list.some((c) => c.id === first && c.kind === 'manual'), 'manual checkpoint kept');
    assert.equal(list.filter((c) => c.kind === 'scheduled').length, 1, JSON.stringify(list));
    const dry = JSON.parse(
      (await oriel(['checkpoint', 'prune', 'ck', '--keep-last', '0', '--dry-run', '--json'])).stdout,
    );
    assert.equal(dry.delete.length, 1);
    assert.ok(!dry.delete.includes(first));
    assert.equal(
      JSON.parse((await oriel(['checkpoint', 'list', 'ck', '--json'])).stdout).length,
      2,
      'a dry run deletes nothing',
    );
  });

  test('verify checks every hash and reports a corrupted pack file', async () => {
    const ok = await oriel(['checkpoint', 'verify', 'ck']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /2 checkpoint\(s\) verified/);
    const packs = join(t.config.dataDir, 'checkpoints');
    const files = (function walk(d: string): string[] {
      return readdirSync(d, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(d, e.name)) : /pack/.test(e.name) ? [join(d, e.name)] : [],
      );
    })(packs).filter((f) => statSync(f).size > 100_000);
    assert.ok(files.length > 0, 'found pack files');
    const fd = openSync(files[0]!, 'r+');
    const b = Buffer.alloc(1);
    const at = Math.floor(statSync(files[0]!).size / 2);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, at);
    closeSync(fd);
    const bad = await oriel(['checkpoint', 'verify', 'ck']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /corrupt checkpoints: /);
  });

  test('deleting the VM deletes its checkpoints', async () => {
    await t.admin.post('/api/vms/ck/force-stop');
    assert.equal((await t.admin.delete('/api/vms/ck')).status, 204);
    assert.deepEqual(t.server.ctx.checkpoints.list(), []);
  });
});
