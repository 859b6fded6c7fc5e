// Lazy restore's wire format and page server without QEMU: the postcopy commands' bytes, the return path parser, the
// userfaultfd check, and PostcopySource against a scripted destination on a real unix socket (requested pages jump
// the queue, no page twice, every non-zero page once, a requested zero page gets a ZERO record).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { scratchRoot } from '../../src/config.ts';
import {
  RP_MSG,
  ReturnPathParser,
  StreamError,
  discardCommand,
  parseStream,
  postcopyPreamble,
  writeStream,
  type PageRecord,
} from '../../src/checkpoint/stream/index.ts';
import { CheckpointStore, type Manifest } from '../../src/checkpoint/page-store/index.ts';
import { PostcopySource, postcopyTuning } from '../../src/checkpoint/postcopy-source.ts';
import { PagePool } from '../../src/checkpoint/page-store/page-pool.ts';
import { WorkingSets } from '../../src/checkpoint/working-set.ts';
import { userfaultfdUnusable } from '../../src/checkpoint/userfaultfd.ts';

const PAGES = 4096; // 16 MiB block
const header = (() => {
  const mt = Buffer.from('pc-q35-7.2');
  const b = Buffer.alloc(13 + mt.length);
  b.writeUInt32BE(0x5145564d, 0);
  b.writeUInt32BE(3, 4);
  b[8] = 7;
  b.writeUInt32BE(mt.length, 9);
  mt.copy(b, 13);
  return b;
})();
const deviceState = Buffer.concat([Buffer.from([4, 0, 0, 0, 9, 5]), Buffer.from('timer'), randomBytes(40), Buffer.from([0])]);
const blocks = [{ id: 'pc.ram', length: PAGES * 4096 }, { id: '/rom@etc/acpi/rsdp', length: 4096 }];

/** Page content of the synthetic guest: pages ≡ 0 mod 3 are zero. */
const pageData = (gen: number, i: number) => (i % 3 === 0 ? null : Buffer.alloc(4096, `${gen}:${i};`));

function rp(type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt16BE(type, 0);
  h.writeUInt16BE(payload.length, 2);
  return Buffer.concat([h, payload]);
}
function reqPagesId(block: string, offset: number, length = 4096): Buffer {
  const p = Buffer.alloc(13 + block.length);
  p.writeBigUInt64BE(BigInt(offset), 0);
  p.writeUInt32BE(length, 8);
  p[12] = block.length;
  p.write(block, 13, 'latin1');
  return rp(RP_MSG.REQ_PAGES_ID, p);
}

/** Like QEMU's listen thread: the PING values in the complete records of `bytes` from `o`; the offset reached. */
function pingsFrom(bytes: Buffer, o: number): { pings: number[]; o: number } {
  const pings: number[] = [];
  while (o + 5 <= bytes.length) {
    const t = bytes[o]!;
    if (t === 8) {
      const len = bytes.readUInt16BE(o + 3);
      if (o + 5 + len > bytes.length) break;
      if (bytes.readUInt16BE(o + 1) === 2) pings.push(bytes.readUInt32BE(o + 5));
      o += 5 + len;
      continue;
    }
    if (t !== 2 && t !== 3) break;
    let p = o + 5;
    let done = false;
    while (p + 8 <= bytes.length) {
      const flags = Number(bytes.readBigUInt64BE(p) & 0xfffn);
      p += 8;
      if (flags & 0x10) {
        done = p + 5 <= bytes.length;
        p += 5;
        break;
      }
      if (!(flags & 0x20)) p += 1 + (bytes[p] ?? 0);
      p += flags & 2 ? 1 : 4096;
    }
    if (!done) break;
    o = p;
  }
  return { pings, o };
}

/** Reads `ram` PART/END sections after the preamble: the page records in arrival order. */
type PageRec = { block: string; index: number; zero: boolean; data?: Buffer };
function pagesOf(bytes: Buffer): { recs: PageRec[]; ended: boolean } {
  const recs: PageRec[] = [];
  let o = 0;
  let block = '';
  while (o < bytes.length) {
    const t = bytes[o]!;
    if (t === 0) return { recs, ended: true };
    if (t === 8) { // a command between sections: the page server's PINGs
      o += 5 + bytes.readUInt16BE(o + 3);
      continue;
    }
    assert.ok(t === 2 || t === 3, `section type ${t} at ${o}`);
    o += 5;
    for (;;) {
      const v = bytes.readBigUInt64BE(o);
      o += 8;
      const flags = Number(v & 0xfffn);
      if (flags & 0x10) break;
      if (!(flags & 0x20)) {
        block = bytes.subarray(o + 1, o + 1 + bytes[o]!).toString('latin1');
        o += 1 + bytes[o]!;
      }
      const zero = (flags & 2) !== 0;
      recs.push({ block, index: Number(v >> 12n), zero, ...(zero ? {} : { data: bytes.subarray(o, o + 4096) }) });
      o += zero ? 1 : 4096;
    }
    assert.equal(bytes[o], 0x7e);
    o += 5;
  }
  return { recs, ended: false };
}

/** A stand-in for QEMU's incoming side at `sockPath`: answers PINGs, asks for `requests` once the preamble is in
 * (reading slowly for a while, as QEMU loading devices), says the devices are loaded 2.5 s later, and SHUTs at the
 * stream's EOF, which must not come before that. Resolves with every byte received. */
async function fakeQemu(sockPath: string, preambleLen: number, requests: Buffer): Promise<{ received: Promise<Buffer>;
  close: () => void; }> {
  let server!: Server;
  const received = new Promise<Buffer>((resolve, reject) => {
    server = createServer((s: Socket) => {
      const chunks: Buffer[] = [];
      let n = 0;
      let asked = false;
      let pongAt = Infinity;
      let tail = Buffer.alloc(0);
      s.on('data', (c: Buffer) => {
        chunks.push(c);
        n += c.length;
        // PONG every PING once read, as QEMU's listen thread does (the page server's flow control waits for them).
        tail = Buffer.concat([tail, c.subarray(Math.max(0, c.length - (n - preambleLen)))]);
        const { pings, o } = pingsFrom(tail, 0);
        tail = tail.subarray(o);
        for (const v of pings) {
          const b = Buffer.alloc(4);
          b.writeUInt32BE(v);
          s.write(rp(RP_MSG.PONG, b));
        }
        if (!asked && n >= preambleLen) {
          asked = true;
          // Like QEMU while loading devices: a data page late in the block and a zero page, while reading slowly.
          s.pause();
          s.write(requests);
          setTimeout(() => s.resume(), 200);
          // Devices loaded only later: the stream must not end before this PONG.
          setTimeout(() => s.write(rp(RP_MSG.PONG, Buffer.from([0x4f, 0x52, 0x4c, 0x01]))), 2500);
          pongAt = Date.now() + 2500;
        }
        if (c[c.length - 1] !== 0 || n <= preambleLen) return;
        const all = Buffer.concat(chunks);
        if (pagesOf(all.subarray(preambleLen)).ended) {
          assert.ok(Date.now() >= pongAt - 50, 'EOF came before the devices were loaded');
          s.end(rp(RP_MSG.SHUT, Buffer.alloc(4)));
          resolve(all);
        }
      });
      s.on('error', reject);
    }).listen(sockPath);
  });
  await new Promise((r) => server.once('listening', r));
  return { received, close: () => server.close() };
}

describe('lazy restore: postcopy stream and page server', () => {
  let dir: string;
  let store: CheckpointStore;
  let parent: Manifest;
  let child: Manifest;

  before(async () => {
    dir = mkdtempSync(join(scratchRoot(), 'opc-'));
    store = new CheckpointStore(join(dir, 'store'));
    const save = async (gen: (i: number) => Buffer | null, id: string, p?: Manifest) => {
      const pages: PageRecord[] = [];
      for (let i = 0; i < PAGES; i++) pages.push({ block: 0, index: i, data: gen(i) });
      pages.push({ block: 1, index: 0, data: Buffer.alloc(4096, 'RSD PTR ') });
      const bytes = Buffer.concat([...writeStream({ header, ramSectionId: 2, blocks, deviceState }, pages)]);
      const w = await store.beginCheckpoint({ parent: p });
      return w.finish(parseStream(bytes, w), {
        id, vmId: 'vm', vmName: 'vm', createdAt: new Date().toISOString(), parent: p?.id ?? null, kind: 'manual',
        qemu: { version: '7.2', machine: 'pc-q35-7.2' }, spec: {}, wasRunning: true, guestReady: true, disks: [],
        stats: { pauseMs: null, durationMs: 0 },
      });
    };
    parent = await save((i) => pageData(1, i), 'p1');
    // The child rewrote pages 2000..2099 (non-zero ones): those go first.
    child = await save((i) => pageData(i >= 2000 && i < 2100 ? 2 : 1, i), 'c1', parent);
  });
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('preamble: header, OPEN_RETURN_PATH, ADVISE, ram START, DISCARD, then PACKAGED{LISTEN, devices, RUN}', () => {
    const b = postcopyPreamble({ header, ramSectionId: 2, blocks, deviceState });
    let o = header.length;
    assert.deepEqual([...b.subarray(o, o + 5)], [8, 0, 1, 0, 0]);
    o += 5;
    assert.deepEqual([...b.subarray(o, o + 5)], [8, 0, 3, 0, 16]);
    assert.equal(b.readBigUInt64BE(o + 5), 4096n);
    assert.equal(b.readBigUInt64BE(o + 13), 4096n);
    o += 21;
    assert.equal(b[o], 1, 'ram START');
    const disc = discardCommand('pc.ram', [[0, 4096]]);
    const at = b.indexOf(disc);
    assert.ok(at > o, 'a discard after START');
    const pk = at + disc.length;
    assert.deepEqual([...b.subarray(pk, pk + 5)], [8, 0, 7, 0, 4]);
    const len = b.readUInt32BE(pk + 5);
    const inner = b.subarray(pk + 9);
    assert.equal(inner.length, len, 'the package ends the preamble');
    assert.deepEqual([...inner.subarray(0, 5)], [8, 0, 4, 0, 0], 'LISTEN first');
    assert.deepEqual([...inner.subarray(-5)], [8, 0, 5, 0, 0], 'RUN last');
    assert.ok(inner.subarray(5, -5).equals(deviceState.subarray(0, -1)), 'device state without its EOF');
    const withPing = postcopyPreamble({ header, ramSectionId: 2, blocks, deviceState, devicesLoadedPing: 7 });
    assert.deepEqual([...withPing.subarray(-14)], [8, 0, 2, 0, 4, 0, 0, 0, 7, 8, 0, 5, 0, 0], 'PING, then RUN');
  });

  test('preamble of huge-page RAM: ADVISE ORs in 2 MiB, START carries the page size, the discard is a 4 KiB block\'s',
    () => {
      const huge = [{ id: 'ram0', length: 8 << 20 }, { id: 'vga.vram', length: 1 << 20 }];
      const size = (id: string) => (id === 'ram0' ? 2 << 20 : 4096);
      const b = postcopyPreamble({ header, ramSectionId: 2, blocks: huge, deviceState, hostPageSize: size });
      let o = header.length + 5;
      assert.equal(b.readBigUInt64BE(o + 5), BigInt((2 << 20) | 4096), 'the page size summary');
      o += 21;
      // START: sid, "ram", version, total|MEM_SIZE, then per block: counted id, be64 length[, be64 page size].
      o += 1 + 4 + 1 + 3 + 8;
      assert.equal(b.readBigUInt64BE(o) & ~0xfffn, BigInt((9 << 20)));
      o += 8;
      assert.equal(b.subarray(o + 1, o + 5).toString('latin1'), 'ram0');
      assert.equal(b.readBigUInt64BE(o + 5), BigInt(8 << 20));
      assert.equal(b.readBigUInt64BE(o + 13), BigInt(2 << 20), "ram0's page size");
      o += 21;
      assert.equal(b.subarray(o + 1, o + 9).toString('latin1'), 'vga.vram');
      assert.equal(b.readBigUInt64BE(o + 9), BigInt(1 << 20));
      assert.equal(b.readBigUInt64BE(o + 17), BigInt(0x10), 'then EOS: no page size for a 4 KiB block');
      assert.ok(b.indexOf(discardCommand('vga.vram', [[0, 4096]])) > 0, 'the discard names a 4 KiB block');
    });

  test('return path: messages split anywhere, REQ_PAGES uses the block named last, bad ones are refused', () => {
    const bytes = Buffer.concat([
      rp(RP_MSG.PONG, Buffer.from([0, 0, 0, 7])),
      reqPagesId('pc.ram', 0xc0000),
      rp(RP_MSG.REQ_PAGES, Buffer.from([0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0x10, 0])),
      rp(RP_MSG.SHUT, Buffer.alloc(4)),
    ]);
    const p = new ReturnPathParser();
    const got = [];
    for (let i = 0; i < bytes.length; i += 3) got.push(...p.push(bytes.subarray(i, i + 3)));
    assert.deepEqual(got, [
      { type: 'pong', value: 7 },
      { type: 'request', block: 'pc.ram', offset: 0xc0000, length: 4096 },
      { type: 'request', block: 'pc.ram', offset: 0x2000, length: 4096 },
      { type: 'shut', status: 0 },
    ]);
    assert.throws(() => new ReturnPathParser().push(rp(RP_MSG.REQ_PAGES, Buffer.alloc(12))), StreamError);
    assert.throws(() => new ReturnPathParser().push(rp(RP_MSG.SHUT, Buffer.alloc(3))), /3 bytes, expected 4/);
    assert.throws(() => new ReturnPathParser().push(rp(RP_MSG.REQ_PAGES_ID, Buffer.alloc(14, 5))), StreamError);
  });

  test('userfaultfd: root with CAP_SYS_PTRACE or the sysctl at 1 can; otherwise a clear reason', () => {
    assert.equal(userfaultfdUnusable({ platform: 'linux', capEff: '000001fffeffffff', unprivileged: '0' }), null);
    assert.equal(userfaultfdUnusable({ platform: 'linux', capEff: '0000000000000000', unprivileged: '1' }), null);
    assert.match(
      userfaultfdUnusable({ platform: 'linux', capEff: '0000000000000000', unprivileged: '0' })!,
      /CAP_SYS_PTRACE.*unprivileged_userfaultfd is 0/,
    );
    assert.match(userfaultfdUnusable({ platform: 'linux', capEff: '0' })!, /no userfaultfd/);
    assert.match(userfaultfdUnusable({ platform: 'darwin' })!, /Linux-only/);
  });

  test('page server: small blocks, requests first, recently written pages next, every non-zero page once, END, EOF', async () => {
    const sockPath = join(dir, 'pc.sock');
    const preamble = postcopyPreamble({ header, ramSectionId: 2, blocks, deviceState, devicesLoadedPing: 0x4f524c01 });
    const preambleLen = preamble.length;
    const q = await fakeQemu(sockPath, preambleLen,
      Buffer.concat([reqPagesId('pc.ram', 4000 * 4096), reqPagesId('pc.ram', 3 * 4096)]));
    const sock = createConnection(sockPath);
    await new Promise((r) => sock.once('connect', r));
    const stats = await new PostcopySource(store, child, parent).run(sock);
    sock.destroy();
    q.close();
    const all = await q.received;
    assert.ok(all.subarray(0, preambleLen).equals(preamble));
    const { recs, ended } = pagesOf(all.subarray(preambleLen));
    assert.ok(ended);
    const key = (r: { block: string; index: number }) => `${r.block}#${r.index}`;
    assert.equal(new Set(recs.map(key)).size, recs.length, 'no page twice');
    const nonZero = Array.from({ length: PAGES }, (_, i) => i).filter((i) => i % 3 !== 0);
    for (const i of nonZero) assert.ok(recs.some((r) => r.block === 'pc.ram' && r.index === i && !r.zero), `page ${i}`);
    assert.ok(recs.some((r) => r.block === '/rom@etc/acpi/rsdp' && r.index === 0));
    const at = (i: number) => recs.findIndex((r) => r.block === 'pc.ram' && r.index === i);
    assert.ok(at(4000) < 200, `the requested page came ${at(4000)}th of ${recs.length}`);
    assert.ok(recs[at(3)]!.zero, 'a requested zero page is a ZERO record');
    // The main RAM's zero pages go only as neighbours of a request (they would fault too), never in the background.
    const near = (i: number) => (i >= 3 - 8 && i <= 3 + 15) || (i >= 4000 - 8 && i <= 4000 + 15);
    const zeros = recs.filter((r) => r.zero && r.block === 'pc.ram');
    assert.ok(zeros.every((r) => near(r.index)), `zero pages pushed: ${zeros.map((r) => r.index).join(',')}`);
    assert.ok(zeros.some((r) => r.index === 6), 'a zero neighbour of a request is pushed');
    // Small blocks (video RAM, ROMs) lead the push, whole.
    assert.ok(recs.findIndex((r) => r.block === '/rom@etc/acpi/rsdp') < 5, 'the small block first');
    assert.equal(stats.smallBlockPages, 1);
    // Pages the child rewrote (2000..2099, non-zero) lead the background push.
    const recent = nonZero.filter((i) => i >= 2000 && i < 2100);
    assert.equal(stats.order, 'recent-first');
    assert.equal(stats.recentPages, recent.length);
    assert.ok(recent.every((i) => at(i) < 250), 'recently written pages first');
    assert.equal(stats.requests, 2);
    assert.ok(stats.requestedPages >= 1 && stats.prefetchedPages > 0, JSON.stringify(stats));
  });

  test('page server: a destination that reads but never answers fails the restore after the stall time, not never', async () => {
    const sockPath = join(dir, 'pc-mute.sock');
    const server = createServer((s) => s.resume()).listen(sockPath); // reads all, says nothing (a wedged QEMU)
    await new Promise((r) => server.once('listening', r));
    const sock = createConnection(sockPath);
    await new Promise((r) => sock.once('connect', r));
    const was = postcopyTuning.stallMs;
    postcopyTuning.stallMs = 1500;
    const t0 = Date.now();
    try {
      await assert.rejects(new PostcopySource(store, child, parent).run(sock), /neither read nor answered the restore stream for 1.5 s/);
    } finally {
      postcopyTuning.stallMs = was;
      sock.destroy();
      server.close();
    }
    assert.ok(Date.now() - t0 < 5000, `failed after ${Date.now() - t0} ms`);
  });

  test('page server: the pages the last device loads asked for follow the device state at once, then the small blocks; the rest of the working set waits for the devices', async () => {
    const sockPath = join(dir, 'pc-head.sock');
    const preamble = postcopyPreamble({ header, ramSectionId: 2, blocks, deviceState, devicesLoadedPing: 0x4f524c01 });
    const q = await fakeQemu(sockPath, preamble.length, reqPagesId('pc.ram', 3000 * 4096));
    const sock = createConnection(sockPath);
    await new Promise((r) => sock.once('connect', r));
    // 1234 and 2222 were asked for while the devices loaded, 3500 later.
    const source = new PostcopySource(store, child, parent, { pages: [1234, 2222, 3500], early: 2 });
    const stats = await source.run(sock);
    sock.destroy();
    q.close();
    const recs = pagesOf((await q.received).subarray(preamble.length)).recs;
    assert.deepEqual(recs.slice(0, 2).map((r) => r.index), [1234, 2222], 'the early pages right behind the device state');
    assert.equal(recs[2]!.block, '/rom@etc/acpi/rsdp', 'then the small blocks');
    const at = (i: number) => recs.findIndex((r) => r.block === 'pc.ram' && r.index === i);
    assert.ok(at(3000) < at(3500), 'the late working-set page only after the request made during the device loads');
    assert.equal(stats.workingSetPages, 3 * (1 + 8 + 15), 'the recorded pages and their neighbours');
    assert.deepEqual(source.asked, [3000]);
    assert.equal(source.askedEarly, 1, 'asked before the devices were loaded');
  });

  for (const threads of [0, 2]) test(`page server, huge-page RAM: a request brings its whole 2 MiB page, in order, zero pages as ZERO records (${threads ? 'read on threads' : 'read here'})`, async () => {
    const sockPath = join(dir, `pc-huge-${threads}.sock`);
    const pool = threads ? new PagePool(threads) : undefined;
    after(() => pool?.close());
    const hostPageSize = (id: string) => (id === 'pc.ram' ? 2 << 20 : 4096);
    const preamble = postcopyPreamble({
      header, ramSectionId: 2, blocks, deviceState, devicesLoadedPing: 0x4f524c01, hostPageSize,
    });
    // QEMU asks for a huge page by its start and its 2 MiB (pages 3584..4095).
    const q = await fakeQemu(sockPath, preamble.length, reqPagesId('pc.ram', 3584 * 4096, 2 << 20));
    const sock = createConnection(sockPath);
    await new Promise((r) => sock.once('connect', r));
    const source = new PostcopySource(store, child, parent, { pages: [], early: 0 }, hostPageSize, pool);
    const stats = await source.run(sock);
    assert.deepEqual(source.asked, [3584], 'the working set records one page per huge page asked for');
    sock.destroy();
    q.close();
    const all = await q.received;
    assert.ok(all.subarray(0, preamble.length).equals(preamble));
    const ram = pagesOf(all.subarray(preamble.length)).recs.filter((r) => r.block === 'pc.ram');
    // Every host page that went, went whole and uninterrupted: runs of 512 from a multiple of 512.
    assert.equal(ram.length % 512, 0);
    for (let k = 0; k < ram.length; k += 512) {
      const run = ram.slice(k, k + 512).map((r) => r.index);
      assert.ok(run[0]! % 512 === 0 && run.every((x, j) => x === run[0]! + j), `run ${k / 512} starts at ${run[0]}`);
    }
    assert.equal(new Set(ram.map((r) => r.index)).size, ram.length, 'no page twice');
    assert.equal(ram.length, PAGES, 'every host page holds data: all of them went');
    assert.equal(ram[0]!.index, 3584, 'the requested host page (pages 3584..4095) first');
    assert.ok(ram.slice(0, 512).some((r) => r.zero) && ram.slice(0, 512).some((r) => !r.zero));
    const childPage = (i: number) => pageData(i >= 2000 && i < 2100 ? 2 : 1, i);
    const wrong = ram.find((r) => !(r.zero ? childPage(r.index) === null : r.data!.equals(childPage(r.index)!)));
    assert.equal(wrong, undefined, 'every page has the child\'s content');
    assert.equal(stats.requests, 1);
  });

  test('page server, huge-page RAM: QEMU ending while a page is read on a thread fails the restore at once', async () => {
    const sockPath = join(dir, 'pc-huge-dies.sock');
    const pool = new PagePool(2);
    after(() => pool.close());
    const hostPageSize = (id: string) => (id === 'pc.ram' ? 2 << 20 : 4096);
    const preambleLen = postcopyPreamble({
      header, ramSectionId: 2, blocks, deviceState, devicesLoadedPing: 0x4f524c01, hostPageSize,
    }).length;
    // A QEMU that asks for a huge page once the device state is in, then dies: the page server is reading that page
    // on a thread when the socket closes, and must not then wait for an answer that cannot come.
    const server = createServer((s) => {
      let n = 0;
      s.on('data', (c: Buffer) => {
        n += c.length;
        if (n < preambleLen || s.destroyed) return;
        s.write(reqPagesId('pc.ram', 1024 * 4096, 2 << 20), () => s.destroy());
      });
      s.on('error', () => undefined);
    }).listen(sockPath);
    await new Promise((r) => server.once('listening', r));
    const sock = createConnection(sockPath);
    await new Promise((r) => sock.once('connect', r));
    const was = postcopyTuning.stallMs;
    postcopyTuning.stallMs = 30_000;
    const t0 = Date.now();
    try {
      const source = new PostcopySource(store, child, parent, { pages: [], early: 0 }, hostPageSize, pool);
      await assert.rejects(source.run(sock), /closed the migration socket|migration socket:/);
    } finally {
      postcopyTuning.stallMs = was;
      sock.destroy();
      server.close();
    }
    assert.ok(Date.now() - t0 < 5000, `failed only after ${Date.now() - t0} ms (the stall time), not at QEMU's end`);
  });

  test('page server, huge-page RAM: the working set read ahead goes once the devices are loaded, or at once when QEMU asks for it', async () => {
    const sockPath = join(dir, 'pc-huge-ahead.sock');
    const pool = new PagePool(2);
    after(() => pool.close());
    const hostPageSize = (id: string) => (id === 'pc.ram' ? 2 << 20 : 4096);
    const preamble = postcopyPreamble({
      header, ramSectionId: 2, blocks, deviceState, devicesLoadedPing: 0x4f524c01, hostPageSize,
    });
    // Recorded: host page 3584 asked for while the devices loaded; 1024 and 2048 after. QEMU asks for 1024 again
    // while its devices load (before the PONG that says they are).
    const q = await fakeQemu(sockPath, preamble.length, reqPagesId('pc.ram', 1024 * 4096, 2 << 20));
    const sock = createConnection(sockPath);
    await new Promise((r) => sock.once('connect', r));
    const ws = { pages: [3584, 1024, 2048], early: 1 };
    const source = new PostcopySource(store, child, parent, ws, hostPageSize, pool);
    await source.readAhead();
    const stats = await source.run(sock);
    assert.deepEqual([stats.requests, stats.requestedPages], [1, 0], 'the asked-for page had been read ahead');
    sock.destroy();
    q.close();
    const ram = pagesOf((await q.received).subarray(preamble.length)).recs.filter((r) => r.block === 'pc.ram');
    const hostPages = [...new Set(ram.map((r) => r.index - (r.index % 512)))];
    assert.deepEqual(hostPages.slice(0, 3), [3584, 1024, 2048],
      'the early page behind the device state, the asked-for one at once, the rest of the working set first after');
    assert.equal(new Set(ram.map((r) => r.index)).size, ram.length, 'no page twice');
    const childPage = (i: number) => pageData(i >= 2000 && i < 2100 ? 2 : 1, i);
    assert.equal(ram.find((r) => !(r.zero ? childPage(r.index) === null : r.data!.equals(childPage(r.index)!))),
      undefined, 'every page has the child\'s content');
  });

  test('working set: recorded by block and page, added to, read back in order (the pages of the device loads first); other blocks and bad files ignored', () => {
    const ws = new WorkingSets(join(dir, 'ws-store'));
    const none = { pages: [], early: 0 };
    assert.deepEqual(ws.read(child), none);
    const rsdp = PAGES; // the second block's page 0, as a global page number
    ws.add(child, [4000, rsdp, 3], 1); // 4000 asked while the devices loaded
    ws.add(child, [3, 17, 9], 2); // 17: asked while they loaded, this time
    assert.deepEqual(ws.read(child), { pages: [4000, 17, rsdp, 3, 9], early: 2 });
    // Read against a RAM layout without the rsdp block: only the pages of blocks it has.
    const other = { ...child, stream: { ...child.stream, blocks: child.stream.blocks.slice(0, 1) } };
    assert.deepEqual(ws.read(other), { pages: [4000, 17, 3, 9], early: 2 });
    // A child without a record of its own borrows its parent's.
    ws.add(parent, [5, 6]);
    assert.deepEqual(ws.readNearest(child, (id) => (id === parent.id ? parent : undefined)),
      { pages: [4000, 17, rsdp, 3, 9], early: 2, from: child.id });
    writeFileSync(join(dir, 'ws-store', 'working-sets', `${child.id}.json`), '{not json');
    assert.deepEqual(ws.readNearest(child, (id) => (id === parent.id ? parent : undefined)),
      { pages: [5, 6], early: 0, from: parent.id });
    assert.deepEqual(ws.read(child), none);
    ws.remove(child.id);
    assert.deepEqual(ws.read(child), none);
  });
});
