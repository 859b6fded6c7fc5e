// The migration stream parser/writer and the page store, on real streams captured from the tiny guest (one QEMU
// run in `before`), plus property-based fuzzing of the parser and crash/full-disk tests of the store.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { scratchRoot } from '../../src/config.ts';
import {
  MigrationStreamParser,
  parseStream,
  StreamError,
  writeStream,
  type PageRecord,
  type ParsedStream,
} from '../../src/checkpoint/stream/index.ts';
import { randomBytes } from 'node:crypto';
import { CheckpointStore, type Manifest } from '../../src/checkpoint/page-store/index.ts';
import { looksIncompressible } from '../../src/checkpoint/page-store/objects.ts';
import { makeRig, bootTiny, type Rig } from './helpers.ts';

/** Pages of a parsed stream, the last record of each page winning (as QEMU's loader does). */
function collect(bytes: Buffer, chunk = 65536): { parsed: ParsedStream; pages: Map<string, string | null> } {
  const pages = new Map<string, string | null>();
  const parsed = parseStream(
    bytes,
    { page: (b, i, d) => void pages.set(`${b}:${i}`, d ? d.toString('base64') : null) },
    chunk,
  );
  return { parsed, pages };
}

function* fromMap(parsed: ParsedStream, pages: Map<string, string | null>): Generator<PageRecord> {
  for (let b = 0; b < parsed.blocks.length; b++) {
    for (let i = 0; i < parsed.blocks[b]!.length / 4096; i++) {
      const d = pages.get(`${b}:${i}`);
      yield { block: b, index: i, data: d ? Buffer.from(d, 'base64') : null };
    }
  }
}

const meta = (
  id: string,
): Omit<Manifest, 'format' | 'stream' | 'stats'> & { stats: { pauseMs: null; durationMs: number } } => ({
  id,
  vmId: 'vm',
  vmName: 'vm',
  createdAt: new Date().toISOString(),
  parent: null,
  kind: 'manual',
  qemu: { version: '7.2', machine: 'pc-q35-7.2' },
  spec: {},
  wasRunning: true,
  guestReady: true,
  disks: [],
  stats: { pauseMs: null, durationMs: 0 },
});

async function storeStream(store: CheckpointStore, bytes: Buffer, id: string, parent?: Manifest): Promise<Manifest> {
  const w = await store.beginCheckpoint({ parent });
  const parsed = parseStream(bytes, w);
  return w.finish(parsed, meta(id));
}

function rebuilt(store: CheckpointStore, m: Manifest): Buffer {
  const parts = {
    header: store.blob(m.stream.header),
    ramSectionId: m.stream.ramSectionId,
    blocks: m.stream.blocks.map((b) => ({ id: b.id, length: b.length })),
    deviceState: store.blob(m.stream.deviceState),
    vmdesc: m.stream.vmdesc ? store.blob(m.stream.vmdesc) : undefined,
  };
  return Buffer.concat([...writeStream(parts, store.pages(m))]);
}

describe('migration stream and page store', () => {
  let rig: Rig;
  let dir: string;
  const streams: Record<string, Buffer> = {};

  before(async () => {
    dir = mkdtempSync(join(scratchRoot(), 'ocs-'));
    rig = await makeRig();
    await bootTiny(rig, 's', 128);
    await rig.vms.exec('s', ['sh', '-c', 'dd if=/dev/urandom of=/tmp/r bs=1M count=2 2>/dev/null']);
    const qmp = rig.vms.qmp('s');
    const grab = async (name: string, bg: boolean) => {
      await qmp.execute('migrate-set-capabilities', {
        capabilities: [{ capability: 'background-snapshot', state: bg }],
      });
      const path = join(rig.dataDir, 'm.sock');
      const chunks: Buffer[] = [];
      const done = new Promise<void>((resolve) => {
        const srv = createServer((s) => {
          s.on('data', (c) => chunks.push(c));
          s.on('end', () => {
            srv.close();
            resolve();
          });
        }).listen(path);
      });
      await new Promise((r) => setTimeout(r, 20));
      await qmp.execute('migrate', { uri: `unix:${path}` });
      await done;
      for (;;) {
        const q = await qmp.execute<{ status: string }>('query-migrate');
        if (q.status === 'completed') break;
        await new Promise((r) => setTimeout(r, 20));
      }
      if (!(await qmp.queryStatus()).running) await qmp.execute('cont');
      streams[name] = Buffer.concat(chunks);
    };
    await grab('background', true);
    await grab('precopy', false);
    await rig.destroy();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('parses real background-snapshot and precopy streams', () => {
    for (const [name, bytes] of Object.entries(streams)) {
      const { parsed, pages } = collect(bytes);
      const total = parsed.blocks.reduce((a, b) => a + b.length / 4096, 0);
      assert.equal(pages.size, total, `${name}: every page of every block is reported`);
      assert.match(parsed.machine, /^pc-q35-/);
      assert.equal(parsed.blocks[0]!.id, 'pc.ram');
      assert.equal(parsed.blocks[0]!.length, 128 * 2 ** 20);
      assert.equal(parsed.deviceState.at(-1), 0, 'device state ends with EOF');
      const desc = JSON.parse(parsed.vmdesc.subarray(5).toString('utf8'));
      assert.equal(desc.page_size, 4096);
      assert.equal(parsed.stats.sawEnd, name === 'precopy');
      assert.ok(parsed.stats.pageRecords > 500, `${name}: ${parsed.stats.pageRecords} data pages`);
    }
  });

  test('split → reassemble keeps every page and the device state; the result parses the same', () => {
    for (const bytes of Object.values(streams)) {
      const a = collect(bytes);
      const out = Buffer.concat([...writeStream(a.parsed, fromMap(a.parsed, a.pages))]);
      const b = collect(out);
      assert.deepEqual(b.pages, a.pages);
      assert.ok(b.parsed.deviceState.equals(a.parsed.deviceState));
      assert.ok(b.parsed.header.equals(a.parsed.header));
    }
  });

  test('chunk boundaries do not matter', () => {
    const bytes = streams.background!;
    const ref = collect(bytes);
    assert.deepEqual(collect(bytes, 4097).pages, ref.pages);
    assert.deepEqual(collect(bytes, 333).pages, ref.pages);
  });

  test('refuses what it does not understand, naming section and offset', () => {
    const bytes = streams.background!;
    // `ram` START at offset 23: type, be32 sid @24, counted "ram" @28, be32 instance @32.
    const fixed = Buffer.from(bytes.subarray(0, 200_000));
    fixed.writeUInt32BE(5, 32);
    assert.throws(
      () => collect(fixed),
      (e: unknown) =>
        e instanceof StreamError && /instance 5/.test(e.message) && e.section === 'ram' && e.offset === 23,
    );
    const cmd = Buffer.concat([bytes.subarray(0, 23), Buffer.from([8, 0, 1, 0, 0])]);
    assert.throws(() => collect(cmd), /COMMAND record 1 .*byte offset 23/);
    assert.throws(() => collect(bytes.subarray(0, 100_000)), /ended inside a record/);
    const magic = Buffer.from(bytes.subarray(0, 64));
    magic[0] = 0;
    assert.throws(() => collect(magic), /not a QEMU migration stream.*byte offset 0/);
  });

  test('fuzz: mutated or truncated streams are accepted or refused with a StreamError, never anything else', () => {
    const a = collect(streams.background!);
    // A small real-shaped stream: the real header, blocks and device state, a few pages.
    const few = new Map([...a.pages].filter(([k]) => /^0:(1|2|3|100)$/.test(k) || k.startsWith('7:')));
    const small = Buffer.concat([
      ...writeStream(
        a.parsed,
        [...fromMap(a.parsed, few)].filter((p) => p.data || p.index % 512 === 0),
        3,
      ),
    ]);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(small.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(small.length),
        fc.integer({ min: 1, max: 9000 }),
        (flips, cut, chunk) => {
          const b = Buffer.from(small.subarray(0, cut === 0 ? small.length : cut));
          for (const [at, v] of flips) if (at < b.length) b[at] = v;
          try {
            const p = new MigrationStreamParser({ page: () => {} });
            for (let i = 0; i < b.length; i += chunk) p.push(b.subarray(i, i + chunk));
            p.end();
          } catch (e) {
            if (!(e instanceof StreamError)) throw e;
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  test('store: dedup, verify every hash, reassemble byte-identical pages', async () => {
    const root = join(dir, 's1');
    const store = new CheckpointStore(root);
    try {
      const m1 = await storeStream(store, streams.background!, 'c1');
      const m2 = await storeStream(store, streams.background!, 'c2');
      assert.ok(m1.stats.newObjects > 500);
      assert.ok(m2.stats.newObjects <= 2, `same stream again adds nothing but its blobs: ${m2.stats.newObjects}`);
      const orig = collect(streams.background!).pages;
      assert.deepEqual(collect(rebuilt(store, m2)).pages, orig);
      const manifestBytes = readFileSync(store.manifestPath('c1')).length;
      assert.ok(manifestBytes < 16_000, `manifest ${manifestBytes} B for 128 MiB`);
      assert.equal((await store.verify()).ok, true);
      const namedByC2 = new Set(store.references(m2)).size;
      // Corrupt one byte of a pack: verify names the object and the checkpoints using it.
      const pack = join(root, 'packs', readdirSync(join(root, 'packs'))[0]!);
      const raw = readFileSync(pack);
      raw[Math.floor(raw.length / 2)] ^= 0xff;
      writeFileSync(pack, raw);
      const rep = await store.verify();
      assert.equal(rep.ok, false);
      assert.equal(rep.corrupt.length, 1);
      assert.deepEqual(Object.keys(rep.broken).sort(), ['c1', 'c2']);
      // One checkpoint's check reads only what it names, and judges only it.
      const one = await store.verify(['c2']);
      assert.deepEqual([one.ok, one.corrupt, Object.keys(one.broken)], [false, rep.corrupt, ['c2']]);
      assert.equal(one.objects, namedByC2, 'each object c2 names, read once');
      assert.throws(() => rebuilt(store, m1), /does not match its hash|cannot inflate|names another object/);
    } finally {
      store.close();
    }
  });

  test('store: pages unchanged since the parent are known without a lookup; incompressible pages skip deflate', async () => {
    const root = join(dir, 's5');
    const store = new CheckpointStore(root);
    try {
      const m1 = await storeStream(store, streams.background!, 'c1');
      const w = await store.beginCheckpoint({ parent: m1 });
      const parsed = parseStream(streams.background!, w);
      const m2 = w.finish(parsed, meta('c2'));
      assert.equal(w.unchangedPages, m1.stats.pages, 'every data page matched its parent');
      assert.ok(m2.stats.newObjects <= 2);
      assert.deepEqual(collect(rebuilt(store, m2)).pages, collect(streams.background!).pages);
    } finally {
      store.close();
    }
    const page = (f: (i: number) => number) => Buffer.from(Array.from({ length: 4096 }, (_, i) => f(i) & 255));
    const block = randomBytes(512);
    assert.equal(looksIncompressible(randomBytes(4096)), true, 'random');
    assert.equal(looksIncompressible(Buffer.alloc(4096)), false, 'zeros');
    assert.equal(looksIncompressible(Buffer.from('the quick brown fox '.repeat(205).slice(0, 4096))), false, 'text');
    assert.equal(looksIncompressible(page((i) => i)), false, 'a repeated 0..255 ramp');
    assert.equal(looksIncompressible(page((i) => block[i % 512]!)), false, 'a repeated random block');
    const half = Buffer.concat([randomBytes(2048), Buffer.alloc(2048)]);
    assert.equal(looksIncompressible(half), false, 'half random, half zeros');
  });

  test('store: a full disk mid-checkpoint leaves earlier checkpoints intact and no garbage', async () => {
    const root = join(dir, 's2');
    let store = new CheckpointStore(root);
    const m1 = await storeStream(store, streams.background!, 'c1');
    store.close();
    store = new CheckpointStore(root, { faults: { failAfterBytes: 300_000 } });
    await assert.rejects(storeStream(store, streams.precopy!, 'c2'), /ENOSPC/);
    store.close();
    store = new CheckpointStore(root);
    try {
      assert.deepEqual(store.list().map((m) => m.id), ['c1']);
      assert.equal(readdirSync(join(root, 'packs')).length, 1, 'the failed session left no pack');
      assert.equal((await store.verify()).ok, true);
      assert.deepEqual(collect(rebuilt(store, m1)).pages, collect(streams.background!).pages);
    } finally {
      store.close();
    }
  });

  test('store: a process killed mid-checkpoint leaves earlier checkpoints restorable', async () => {
    const root = join(dir, 's3');
    let store = new CheckpointStore(root);
    const m1 = await storeStream(store, streams.background!, 'c1');
    store.close();
    const file = join(dir, 'precopy.mig');
    writeFileSync(file, streams.precopy!);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'write-child.ts'), root, file],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    await new Promise<void>((resolve) =>
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('started')) resolve();
      }),
    );
    await new Promise((r) => setTimeout(r, 400)); // well inside its ~5 s of slow writing
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(!out.includes('finished'));
    assert.equal(readdirSync(join(root, 'packs')).length, 2, 'the child had started a pack');
    store = new CheckpointStore(root); // takes over the dead process's lock, deletes its pack
    try {
      assert.equal(readdirSync(join(root, 'packs')).length, 1);
      assert.deepEqual(store.list().map((m) => m.id), ['c1']);
      assert.equal((await store.verify()).ok, true);
      assert.deepEqual(collect(rebuilt(store, m1)).pages, collect(streams.background!).pages);
    } finally {
      store.close();
    }
  });

  test('store: GC frees what deleted checkpoints alone used, keeps the rest', async () => {
    const root = join(dir, 's4');
    const store = new CheckpointStore(root);
    try {
      await storeStream(store, streams.background!, 'c1');
      const m2 = await storeStream(store, streams.precopy!, 'c2');
      // Precopy re-sends pages the guest dirtied meanwhile: their earlier versions were stored and are garbage.
      await store.gc();
      assert.equal((await store.gc()).deadObjects, 0, 'nothing left to collect');
      store.removeManifest('c1');
      const g = await store.gc();
      assert.ok(g.deadObjects > 0 && g.bytesFreed > 0, JSON.stringify(g));
      assert.equal((await store.verify()).ok, true);
      assert.deepEqual(collect(rebuilt(store, m2)).pages, collect(streams.precopy!).pages);
    } finally {
      store.close();
    }
  });
});
