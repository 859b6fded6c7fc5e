// The capture's thread pool (page-store/page-pool.ts, pipeline.ts) and the batched restore check: the same stream
// stored through the pool and in one thread gives the same manifest and the same stored bytes; a thread that dies
// fails the capture cleanly; the batched check finds missing and corrupt objects. No guest: streams are built here.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { scratchRoot } from '../../src/config.ts';
import { parseStream, writeStream, type PageRecord } from '../../src/checkpoint/stream/index.ts';
import { CheckpointStore, PagePool, captureThreads, type Manifest } from '../../src/checkpoint/page-store/index.ts';
import { PageBatch } from '../../src/checkpoint/page-store/page-pool.ts';

const dir = mkdtempSync(join(scratchRoot(), 'pool-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const meta = (id: string) => ({
  id, vmId: 'vm', vmName: 'vm', createdAt: new Date().toISOString(), parent: null, kind: 'manual' as const,
  qemu: { version: '7.2' }, spec: {}, wasRunning: true, guestReady: true, disks: [],
  stats: { pauseMs: null, durationMs: 0 },
});

const PAGES = 3000;
const text = Buffer.from('kernel page memory process file buffer cache inode '.repeat(100));
/** A stream of 3000 pages: zero records, zero-content data pages, repeats, text-like and random pages, and a
 * precopy-style second pass re-sending some pages (data → zero, zero → data, data → other data). */
function stream(seed: number): Buffer {
  const repeated = [randomBytes(4096), Buffer.from(text.subarray(0, 4096))];
  const pageOf = (i: number): Buffer | null => {
    switch ((i * 7 + seed) % 6) {
      case 0: return null;
      case 1: return Buffer.alloc(4096);
      case 2: return repeated[i % 2]!;
      case 3: { const p = Buffer.from(text.subarray(i % 512, (i % 512) + 4096)); p.writeUInt32LE(i * seed); return p; }
      default: return randomBytes(4096);
    }
  };
  const header = Buffer.concat([Buffer.from('QEVM\0\0\0\x03\x07\0\0\0\x0apc-q35-7.2', 'latin1')]);
  const pages: PageRecord[] = [];
  for (let i = 0; i < PAGES; i++) pages.push({ block: 0, index: i, data: pageOf(i) });
  for (let i = 0; i < PAGES; i += 5) pages.push({ block: 0, index: i, data: i % 10 ? null : randomBytes(4096) });
  const parts = {
    header, ramSectionId: 2, blocks: [{ id: 'pc.ram', length: PAGES * 4096 }],
    deviceState: Buffer.from([0x00]),
  };
  return Buffer.concat([...writeStream(parts, pages, 700)]);
}

async function store(s: CheckpointStore, bytes: Buffer, id: string, pool?: PagePool, parent?: Manifest) {
  const w = await s.beginCheckpoint({ parent, pool });
  const parsed = parseStream(bytes, w, 65536);
  await w.flushPages();
  return w.finish(parsed, meta(id));
}

describe('capture thread pool', () => {
  test('the pool stores what the single-threaded path stores, byte for byte', async () => {
    const full = stream(1), incr = stream(2);
    const pool = new PagePool(2);
    const [a, b] = [new CheckpointStore(join(dir, 'a')), new CheckpointStore(join(dir, 'b'))];
    try {
      const a1 = await store(a, full, 'c1');
      const a2 = await store(a, incr, 'c2', undefined, a1);
      const b1 = await store(b, full, 'c1', pool);
      const b2 = await store(b, incr, 'c2', pool, b1);
      for (const [x, y] of [[a1, b1], [a2, b2]] as const) {
        assert.deepEqual(y.stream, x.stream);
        const { pages, zeroPages, newObjects, newBytes, ownBytes } = x.stats;
        assert.deepEqual(
          { pages: y.stats.pages, zeroPages: y.stats.zeroPages, newObjects: y.stats.newObjects,
            newBytes: y.stats.newBytes, ownBytes: y.stats.ownBytes },
          { pages, zeroPages, newObjects, newBytes, ownBytes });
        for (const h of a.references(x)) {
          const key = Buffer.from(h, 'hex');
          assert.ok(a.objects.record(key).equals(b.objects.record(key)), `object ${h} stored alike`);
        }
      }
      assert.ok(a1.stats.zeroPages > 0 && a1.stats.pages > 0 && a2.stats.newObjects < a1.stats.newObjects);
      // Last record wins: page 0 was re-sent with new data, page 5 as a zero record.
      const pa = [...b.pages(b2)];
      assert.equal(pa[5]!.data, null);
      assert.ok(pa[0]!.data && !pa[0]!.data.equals(Buffer.alloc(4096)));
      assert.deepEqual(pa.map((p) => p.data?.toString('hex') ?? null), [...a.pages(a2)].map((p) => p.data?.toString('hex') ?? null));
    } finally {
      a.close();
      b.close();
      await pool.close();
    }
  });

  test('a thread that dies fails the capture cleanly; the next one succeeds', async () => {
    const s = new CheckpointStore(join(dir, 'c'));
    const pool = new PagePool(2);
    const w = await s.beginCheckpoint({ pool });
    try {
      const bytes = stream(3);
      await pool.killOne();
      await assert.rejects(async () => {
        const parsed = parseStream(bytes, w, 65536);
        await w.flushPages();
        w.seal(parsed);
      }, /page thread 0 exited/);
      w.abort();
      assert.deepEqual(readdirSync(join(dir, 'c', 'packs')), [], 'nothing of the failed checkpoint is left');
      assert.equal(s.list().length, 0);
      await assert.rejects(pool.hash(new PageBatch()), /page thread 0 exited/);
      const pool1 = new PagePool(1);
      const m = await store(s, bytes, 'ok', pool1).finally(() => pool1.close());
      assert.equal((await s.checkAll(m, 0)) > 0, true);
    } finally {
      s.close();
      await pool.close();
    }
  });

  test('the restore check and a lazy restore\'s reads go in batches, on threads or not, and find corrupt and missing objects', async () => {
    const s = new CheckpointStore(join(dir, 'd'));
    try {
      const m = await store(s, stream(4), 'c');
      // Many objects at once (a lazy restore's huge page), here or on threads: each as `get` reads it, repeats too.
      const pages = [...s.objects.all()].filter((r) => r.raw === 4096).map((r) => r.hash);
      const want = [...pages.slice(0, 300), pages[7]!];
      const one = want.map((h) => s.objects.get(h));
      assert.deepEqual(s.objects.getMany(want), one);
      const forget = s.objects.keepLocations(); // as a lazy restore does: looked up once, in its check
      const pool = new PagePool(2);
      try {
        assert.deepEqual(await s.objects.getManyOn(pool, want), one);
        assert.deepEqual(await s.objects.getManyOn(pool, want), one, 'again, from the kept locations');
        // An eager restore's pages, a table at a time on the threads: those the single-threaded path gives.
        const tables: PageRecord[] = [];
        for await (const t of s.pageTables(m, pool)) tables.push(...t);
        assert.deepEqual(tables, [...s.pages(m)]);
      } finally {
        forget();
        await pool.close();
      }
      const n0 = await s.checkAll(m, 0);
      const n2 = await s.checkAll(m, 2, 1);
      assert.equal(n0, n2);
      assert.equal(n0, new Set(s.references(m)).size);
      // Flip one byte inside a page object's stored data (one the checkpoint names: the pack also holds pages the
      // second pass replaced).
      const named = new Set(s.references(m));
      const victim = [...s.objects.all()].find((r) => r.raw === 4096 && named.has(r.hash.toString('hex')))!;
      const fd = openSync(s.objects.packPath(victim.pack), 'r+');
      const at = victim.offset + 41 + Math.floor(victim.stored / 2);
      const byte = Buffer.alloc(1);
      readSync(fd, byte, 0, 1, at);
      writeSync(fd, Buffer.from([byte[0]! ^ 0xff]), 0, 1, at);
      closeSync(fd);
      for (const threads of [0, 2])
        await assert.rejects(s.checkAll(m, threads, 1), /content does not match its hash|cannot inflate/);
      const corrupt = /object [0-9a-f]{16}… \(pack \d+ offset \d+\): (content does not match its hash|cannot inflate)/;
      assert.throws(() => s.objects.getMany([victim.hash]), corrupt);
      const threads = new PagePool(2);
      try {
        await assert.rejects(s.objects.getManyOn(threads, [...pages.slice(0, 40), victim.hash]), corrupt);
      } finally {
        await threads.close();
      }
      s.objects.db.prepare('DELETE FROM objects WHERE hash = ?').run(victim.hash);
      for (const threads of [0, 2]) await assert.rejects(s.checkAll(m, threads, 1), /is not in the store/);
    } finally {
      s.close();
    }
  });

  test('ORIEL_CAPTURE_THREADS', () => {
    assert.equal(captureThreads({ ORIEL_CAPTURE_THREADS: '0' }), 0);
    assert.equal(captureThreads({ ORIEL_CAPTURE_THREADS: '3' }), 3);
    assert.ok(captureThreads({}) >= 1);
    assert.throws(() => captureThreads({ ORIEL_CAPTURE_THREADS: 'many' }), /0–64/);
  });
});
