// Lazy restore's page server: Oriel plays the source of a QEMU 7.2 postcopy migration, reading pages from the store.
// It sends the header, the postcopy commands and the device state (stream/postcopy.ts), after which QEMU loads the
// devices and runs the guest. Right behind the device state go the pages a previous lazy restore of this checkpoint
// was asked for while its devices loaded (working-set.ts), read before QEMU started; then the small blocks (video
// RAM, ROMs). Once the devices are loaded, it answers the pages QEMU requests on the return path first (each with a
// few of its neighbours: the guest tends to read on), and pushes every other non-zero page behind them: the rest of
// the recorded working set and its neighbours, then the pages the guest wrote between the parent checkpoint and this
// one (the most recently written pages the store can tell; then block and page order). The main RAM's zero pages are
// pushed only near a request, as ZERO records: pages never sent read as zeros once the stream has ended. No page goes
// twice (QEMU would exit). Huge-page RAM goes by whole 2 MiB pages. Pages are read from the store many at once and
// decoded on the restore's threads (a huge page, or 256 background 4 KiB pages, at a time).
// Few bytes are queued ahead of a request: a PING follows each write and its PONG says QEMU has read that far, so
// background pages stop once MAX_IN_FLIGHT bytes are unread (a batch in progress goes whole: up to ~1 MiB more),
// and pause for HOLD_MS after each request (requests and their neighbours always go at once, written before a
// background batch is read). The page tables, the order, the device-state bytes and the early pages are prepared
// before QEMU starts (constructor).
import type { Socket } from 'node:net';
import { setImmediate as tick } from 'node:timers/promises';
import {
  PAGE_SIZE,
  PostcopyPageEncoder,
  ReturnPathParser,
  postcopyEnd,
  pingCommand,
  postcopyPreamble,
  type ReturnPathMessage,
} from './stream/index.ts';
import {
  ObjectCorruptError, ObjectMissingError, PAGES_PER_TABLE, type CheckpointStore, type Manifest,
} from './page-store/index.ts';
import type { PagePool } from './page-store/page-pool.ts';
import type { WorkingSet } from './working-set.ts';

const HASH = 32;
/** Pages per write while pushing in the background (~128 KiB). */
const BATCH_PAGES = 32;
/** 4 KiB pages read and decoded together while pushing in the background (1 MiB): fewer, larger jobs for the threads
 * (2 GiB ordinary-RAM guest, all RAM in place: 2.3 s in batches of 32, 1.5-1.8 s in batches of 256). */
const READ_BATCH_PAGES = 256;
/** Neighbours sent after a requested page. */
const PREFETCH_PAGES = 15;
/** Neighbours before it (a device load or the guest may walk memory downwards). */
const PREFETCH_BACK_PAGES = 8;
const PREFETCH_QUEUE_MAX = 4096;
/** Bytes of the recorded early pages read before QEMU starts (here, on the server's thread): the tiny guest's device
 * loads ask for ~4 huge pages. */
const MAX_HEAD_BYTES = 8 * 2 ** 20;
/** Bytes of the rest of the working set read ahead before QEMU starts (on the threads). */
const MAX_AHEAD_BYTES = 64 * 2 ** 20;
/** A wait on QEMU (for a PONG, a request, SHUT) that hears nothing from it this long fails the restore: QEMU answers
 * every PING as it reads, so a QEMU that works is never silent for long while Oriel waits on it. Without this, a
 * wedged QEMU held the restore (and whoever awaited it) for ever. */
export const STALL_MS = 60_000;
/** PING value after the device state in the package. */
const DEVICES_LOADED = 0x4f52_4c01;

/** Background pages (not requests, not the recorded working set) are held back this long after QEMU's latest
 * request: while the guest faults, its requests find the socket nearly empty and the 2 host CPUs free for the vCPU
 * (measured, 2 GiB TCG guest, first lazy restore: first serial answer 553 → 465 ms with 20 ms, 410 ms with 50 ms;
 * all RAM in place about as soon). */
const HOLD_MS = 50;
/** Bytes written but not yet read by QEMU (known from the PONGs of PINGs after each write) beyond which no more
 * background pages are written: a requested page waits behind at most this much (the kernel's unix socket buffer
 * alone holds ~200 KiB, which Node's `writableNeedDrain` does not see). ~0.3 ms of QEMU's reading. */
const MAX_IN_FLIGHT = 256 * 1024;

/** The page server's knobs (bench/checkpoint.ts and diagnosis); `log` keeps a record per request in the stats. */
export const postcopyTuning = {
  holdMs: HOLD_MS, maxInFlight: MAX_IN_FLIGHT, prefetchAhead: PREFETCH_PAGES, prefetchBack: PREFETCH_BACK_PAGES,
  batchPages: BATCH_PAGES, log: false, useWorkingSet: true, stallMs: STALL_MS,
};
/** One page request (performance.now() times): asked, written, its write's PONG back (placed); bytes unread ahead. */
export interface RequestLogEntry {
  at: number; written: number; queuedNode: number; sentBefore: number; fresh: boolean; placed: number; page: number;
}
/** PINGs after writes: PROBE_BASE + a 16-bit sequence number. */
const PROBE_BASE = 0x5052_0000;

export interface PostcopyStats {
  /** How the background pages were ordered. */
  order: 'recent-first' | 'stored';
  /** Non-zero pages written since the parent checkpoint (pushed first). */
  recentPages: number;
  /** Pages of the blocks other than the main RAM (video RAM, ROMs), zero ones included: pushed before all others. */
  smallBlockPages: number;
  /** Pages a previous lazy restore of this checkpoint was asked for (working-set.ts): pushed right after them. */
  workingSetPages: number;
  /** Pages QEMU asked for, and how many of them had not been sent yet when asked. */
  requests: number;
  requestedPages: number;
  prefetchedPages: number;
  pushedPages: number;
  streamBytes: number;
  /** performance.now() when the last page was written, and when QEMU confirmed the end (SHUT 0). */
  pushedAt: number;
  shutAt: number;
  requestLog?: RequestLogEntry[];
}

export class PostcopySource {
  private readonly tables: Buffer[];
  private readonly base: number[] = [];
  private readonly blockIndex = new Map<string, number>();
  private readonly sent: Uint8Array;
  private readonly requests: number[] = [];
  private prefetch: number[] = [];
  private readonly rp = new ReturnPathParser();
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private shut: number | undefined;
  private devicesLoaded = false;
  private readonly stats: PostcopyStats;
  private mark: (stage: string) => void = () => undefined;
  private sock!: Socket;
  /** Everything up to and including the device state (built before QEMU starts). */
  private readonly preamble: Buffer;
  /** The pages the device loads are expected to ask for (the recorded early pages), encoded before QEMU starts. */
  private readonly head: Buffer;

  /** Reads the page tables and orders the pages: everything that needs no QEMU, done before it starts. */
  constructor(
    private readonly store: CheckpointStore,
    private readonly m: Manifest,
    parent?: Manifest,
    workingSet: WorkingSet = { pages: [], early: 0 },
    /** A block's page size in the destination QEMU when not 4 KiB (huge-page RAM; stream/postcopy.ts). */
    private readonly hostPageSize?: (id: string) => number,
    /** Threads that read huge pages (512 pages each) for this thread, which meanwhile serves QEMU's requests. */
    private readonly pool?: PagePool,
  ) {
    let total = 0;
    this.tables = m.stream.blocks.map((b, i) => {
      this.base.push(total);
      this.perHost.push(Math.max(1, (hostPageSize?.(b.id) ?? PAGE_SIZE) / PAGE_SIZE));
      this.blockIndex.set(b.id, i);
      total += b.length / PAGE_SIZE;
      return store.blockTable(b);
    });
    this.sent = new Uint8Array(total);
    const { order, recent, small, ahead, beforeDevices, early, late } = this.pushOrder(parent, workingSet);
    this.lateWorkingSet = [beforeDevices, beforeDevices + late];
    this.order = order;
    this.ahead = ahead;
    this.beforeDevices = beforeDevices;
    this.stats = {
      order: parent && recent > 0 ? 'recent-first' : 'stored', recentPages: recent, smallBlockPages: small,
      workingSetPages: ahead - small,  // recorded pages and their neighbours
      requests: 0, requestedPages: 0,
      prefetchedPages: 0, pushedPages: 0, streamBytes: 0, pushedAt: 0, shutAt: 0,
    };
    // The pages the device loads asked for last time, read now: they follow the device state at once.
    const enc = new PostcopyPageEncoder(m.stream.ramSectionId, m.stream.blocks);
    let headBytes = 0;
    for (const g of order.subarray(0, early)) {
      if (this.sent[g]) continue;
      headBytes += this.perHost[this.blockOf(g)]! * PAGE_SIZE;
      if (headBytes > MAX_HEAD_BYTES) break;
      void this.send(enc, g, true);
      this.stats.pushedPages++;
    }
    this.head = enc.take();
    this.preamble = postcopyPreamble({
      header: this.store.blob(this.m.stream.header),
      ramSectionId: this.m.stream.ramSectionId,
      blocks: this.m.stream.blocks.map((b) => ({ id: b.id, length: b.length })),
      deviceState: this.store.blob(this.m.stream.deviceState),
      devicesLoadedPing: DEVICES_LOADED,
      hostPageSize,
    });
  }

  /** Per block, its target pages per host page: 1, or 512 for 2 MiB huge pages. */
  private readonly perHost: number[] = [];

  private readonly order: Uint32Array;
  /** The head of `order` pushed even while requests arrive: the small blocks and the recorded working set. */
  private readonly ahead: number;
  /** The head of `order` pushed before QEMU has loaded the devices: the recorded pages their loads asked for, and the
   * small blocks. The rest of the working set waits: pushed then, 2 MiB a huge page, it held the guest back (from
   * QEMU's start to running: 80 → 360 ms, 2 GiB guest). */
  private readonly beforeDevices: number;
  /** Where in `order` the rest of the recorded working set is (after the early pages and the small blocks). */
  private readonly lateWorkingSet: [number, number];
  /** That rest, read ahead (`readAhead`): stream chunks (a host page each), emptied once written, and the chunk of
   * each of their pages. */
  private later: { chunks: Buffer[]; chunkOf: Map<number, number>; next: number } | undefined;

  /** Reads the huge pages of the rest of the recorded working set (≤ MAX_AHEAD_BYTES) on the pool's threads, before
   * QEMU starts. Once the devices are loaded they go first in the background (requests still before them), and one
   * QEMU asks for goes at once. Pushed from the store then, 2 MiB a page, they competed with the guest's requests for
   * the same threads (2 GiB guest: first serial answer ~450 → ~330 ms from QEMU started). 4 KiB pages are cheap
   * enough to read as they are pushed (measured: no gain). */
  async readAhead(): Promise<void> {
    if (!this.pool) return;
    const chunks: PostcopyPageEncoder[] = [];
    const chunkOf = new Map<number, number>();
    const reads: Promise<void>[] = [];
    let bytes = 0;
    for (const g of this.order.subarray(...this.lateWorkingSet)) {
      const b = this.blockOf(g);
      const pp = this.perHost[b]!;
      if (this.sent[g] || pp === 1) continue;
      if ((bytes += pp * PAGE_SIZE) > MAX_AHEAD_BYTES) break;
      this.stats.pushedPages++;
      const enc = new PostcopyPageEncoder(this.m.stream.ramSectionId, this.m.stream.blocks);
      for (const n of this.hostPageOf(g)) chunkOf.set(n, chunks.length);
      chunks.push(enc);
      const w = this.send(enc, g);
      if (w) reads.push(w);
    }
    await Promise.all(reads);
    this.later = { chunks: chunks.map((e) => e.take()), chunkOf, next: 0 };
  }

  /** Writes read-ahead chunk `k` unless it went already. */
  private writeLater(k: number): void {
    const c = this.later!.chunks[k]!;
    if (!c.length) return;
    this.later!.chunks[k] = Buffer.alloc(0);
    this.write(c);
    this.probe();
  }

  /** Every page QEMU asked for, in order (first time each): the working set to record. */
  readonly asked: number[] = [];
  /** How many of `asked`, from the first, QEMU asked for before it had loaded the devices. */
  askedEarly = 0;

  /** Waits for `poke` (a message from QEMU, 'drain', 'close', a hold's timer); fails the restore after STALL_MS
   * without one. */
  private async waitForQemu(): Promise<void> {
    if (this.poked || this.failure) {
      this.poked = false;
      return;
    }
    const stall = setTimeout(() => this.fail(new Error(
      `QEMU has neither read nor answered the restore stream for ${postcopyTuning.stallMs / 1000} s`)),
    postcopyTuning.stallMs);
    await new Promise<void>((r) => (this.wake = r));
    clearTimeout(stall);
  }

  private listen(sock: Socket): void {
    this.sock = sock;
    sock.on('data', (c: Buffer) => {
      try {
        for (const msg of this.rp.push(c)) this.onMessage(msg);
      } catch (e) {
        this.fail(e as Error);
      }
    });
    sock.on('drain', () => this.poke());
    sock.on('error', (e) => this.fail(new Error(`migration socket: ${e.message}`)));
    sock.on('close', () => {
      if (this.shut === undefined) this.fail(new Error('QEMU closed the migration socket before the end (see its log)'));
      this.poke();
    });
  }

  /** Sends everything into `sock` (QEMU's incoming migration); resolves once QEMU has every page and said so
   * (SHUT 0). `mark` is told each step (timings). Once per source. */
  async run(sock: Socket, mark?: (stage: string) => void): Promise<PostcopyStats> {
    if (mark) this.mark = mark;
    this.listen(sock);
    this.write(this.preamble, () => this.mark('device state written'));
    if (this.head.length) this.write(this.head);
    this.probe();
    const enc = new PostcopyPageEncoder(this.m.stream.ramSectionId, this.m.stream.blocks);
    let next = 0; // into this.order
    const T = postcopyTuning;
    for (;;) {
      if (this.failure) throw this.failure;
      while (this.requests.length) {
        const g = this.requests.shift()!;
        const k = this.later?.chunkOf.get(g);
        if (k !== undefined) this.writeLater(k); // read ahead, maybe not written yet
        if (this.sent[g]) {
          if (T.log) this.logRequest(g, false);
          continue;
        }
        const w = this.send(enc, g);
        if (w) await w;
        this.stats.requestedPages++;
        if (T.log) this.logRequest(g, true);
        this.queueNeighbours(g);
      }
      const now = performance.now();
      const room = () => enc.pending < T.batchPages * PAGE_SIZE && !this.sock.writableNeedDrain &&
        (T.maxInFlight <= 0 || this.stats.streamBytes - this.acked + enc.pending < T.maxInFlight);
      while (room() && this.prefetch.length) {
        const g = this.prefetch.shift()!;
        if (this.sent[g]) continue;
        const w = this.send(enc, g);
        if (w) await w;
        this.stats.prefetchedPages++;
      }
      // Requests and their neighbours go now, not behind the background batch read next.
      const urgent = enc.take();
      if (urgent.length) {
        this.write(urgent);
        if (T.maxInFlight > 0 || T.log) this.probe();
      }
      // Then what was read ahead of the working set, once the devices are loaded.
      const later = this.later;
      while (later && this.devicesLoaded && room() && later.next < later.chunks.length) this.writeLater(later.next++);
      // Until the devices are loaded, only the recorded early pages and the small blocks go in the background: each
      // request QEMU's main thread waits on (device loads walk virtqueues in guest RAM) would queue behind the rest.
      const held = T.holdMs > 0 && now - this.lastRequestAt < T.holdMs;
      const until = !this.devicesLoaded ? Math.max(next, this.beforeDevices)
        : held ? Math.max(next, this.ahead) : this.order.length;
      // 4 KiB pages go in batches (read together, decoded on the threads); a huge page is one on its own.
      const batch: number[] = [];
      const flush = async () => {
        const w = batch.length ? this.sendPages(enc, batch.splice(0)) : undefined;
        if (w) await w;
      };
      while (room() && next < until) {
        const g = this.order[next++]!;
        if (this.sent[g]) continue;
        this.stats.pushedPages++;
        if (this.perHost[this.blockOf(g)] === 1) {
          this.sent[g] = 1;
          if (batch.push(g) >= READ_BATCH_PAGES) await flush();
          continue;
        }
        await flush();
        const w = this.send(enc, g);
        if (w) await w;
      }
      await flush();
      const part = enc.take();
      if (part.length) {
        this.write(part);
        if (T.maxInFlight > 0 || T.log) this.probe();
      }
      // The stream ends only once QEMU has loaded the devices (their loads may still ask for pages, zero ones too).
      const laterLeft = !!this.later && this.later.next < this.later.chunks.length;
      if (next >= this.order.length && !this.requests.length && !this.prefetch.length && this.devicesLoaded &&
        !laterLeft) break;
      if (this.requests.length) continue;
      if (!room() || (next >= until && !this.prefetch.length)) {
        // Woken by a request, a PONG (window), 'drain', or the end of the hold.
        const timer = held && next < this.order.length
          ? setTimeout(() => this.poke(), T.holdMs - (now - this.lastRequestAt) + 0.5) : undefined;
        await this.waitForQemu();
        clearTimeout(timer);
      } else {
        await tick(); // lets the return path's data in
      }
    }
    this.stats.pushedAt = performance.now();
    this.mark('all pages sent');
    this.write(postcopyEnd(this.m.stream.ramSectionId));
    while (this.shut === undefined && !this.failure) await this.waitForQemu();
    if (this.shut === undefined) throw this.failure!;
    if (this.shut !== 0) throw new Error(`QEMU reported a failed restore (return path SHUT ${this.shut}; see its log)`);
    this.stats.shutAt = performance.now();
    this.mark('QEMU has all pages (SHUT 0)');
    return { ...this.stats };
  }

  private lastRequestAt = -Infinity;
  private acked = 0;
  private probeSeq = 0;
  private readonly probes = new Map<number, { pos: number; log: RequestLogEntry[] }>();
  private pendingLog: RequestLogEntry[] = [];

  private logRequest(g: number, fresh: boolean): void {
    const e: RequestLogEntry = {
      at: this.arrival.get(g) ?? NaN, written: performance.now(), queuedNode: this.sock.writableLength,
      sentBefore: this.stats.streamBytes - this.acked, fresh, placed: NaN, page: g,
    };
    (this.stats.requestLog ??= []).push(e);
    this.pendingLog.push(e);
  }

  /** A PING after a write: its PONG says QEMU's listen thread has read (and placed) everything before it. */
  private probe(): void {
    const v = (PROBE_BASE + (++this.probeSeq & 0xffff)) >>> 0;
    const b = pingCommand(v);
    this.write(b);
    this.probes.set(v, { pos: this.stats.streamBytes, log: this.pendingLog });
    this.pendingLog = [];
  }

  private readonly arrival = new Map<number, number>();
  private readonly askedSet = new Set<number>();

  /** Sends page `g`; in a huge-page block, every page of its host page, in order, zero ones as ZERO records (QEMU
   * places a huge page once all of it has come, and refuses a page of another host page in between). */
  private send(enc: PostcopyPageEncoder, g: number, here = false): Promise<void> | undefined {
    const gs = this.hostPageOf(g);
    for (const n of gs) this.sent[n] = 1;
    return this.sendPages(enc, gs, here);
  }

  /** The pages of `g`'s host page, in order (`g` alone in a 4 KiB block). */
  private hostPageOf(g: number): number[] {
    const b = this.blockOf(g);
    const pp = this.perHost[b]!;
    const first = this.base[b]! + Math.floor((g - this.base[b]!) / pp) * pp;
    return Array.from({ length: pp }, (_, k) => first + k);
  }

  /** Sends pages `gs` (marked sent by the caller), in order. They are read at once (one index query per 250, one
   * read per run of neighbouring records) and, unless `here` or there are only a few, decoded on the pool's threads
   * (a promise then): one by one here, a huge page's 512 took 5-15 ms while the guest waited. */
  private sendPages(enc: PostcopyPageEncoder, gs: number[], here = false): Promise<void> | undefined {
    const items = gs.map((g) => {
      const b = this.blockOf(g);
      const i = g - this.base[b]!;
      const h = this.tables[b]!.subarray(i * HASH, (i + 1) * HASH);
      return { b, i, h: isZero(h) ? null : h };
    });
    const hashes = items.flatMap((p) => (p.h ? [p.h] : []));
    const put = (data: Buffer[]) => {
      let k = 0;
      for (const p of items) enc.page(p.b, p.i, p.h ? data[k++]! : null);
    };
    if (!this.pool || here || hashes.length < 8) {
      put(this.store.objects.getMany(hashes));
      return undefined;
    }
    // A thread that failed (not a page: those fail here too) leaves the pages to this thread.
    return this.store.objects.getManyOn(this.pool, hashes).then(put, (e: Error) => {
      if (e instanceof ObjectCorruptError || e instanceof ObjectMissingError) throw e;
      put(this.store.objects.getMany(hashes));
    });
  }

  private write(b: Buffer, done?: () => void): void {
    this.stats.streamBytes += b.length;
    this.sock.write(b, done);
  }

  private onMessage(msg: ReturnPathMessage): void {
    if (msg.type === 'shut') this.shut = msg.status;
    else if (msg.type === 'pong' && this.probes.has(msg.value)) {
      const p = this.probes.get(msg.value)!;
      this.probes.delete(msg.value);
      this.acked = Math.max(this.acked, p.pos);
      const t = performance.now();
      for (const e of p.log) e.placed = t;
    } else if (msg.type === 'pong' && msg.value === DEVICES_LOADED) {
      this.devicesLoaded = true;
      this.mark('devices loaded (PONG)');
    } else if (msg.type === 'request') {
      if (this.stats.requests === 0) this.mark('first page request');
      const b = this.blockIndex.get(msg.block);
      const blk = b === undefined ? undefined : this.m.stream.blocks[b];
      if (b === undefined || !blk || msg.offset % PAGE_SIZE || msg.offset + msg.length > blk.length) {
        throw new Error(`QEMU asked for bytes ${msg.offset}+${msg.length} of RAM block '${msg.block}': not in the checkpoint`);
      }
      this.stats.requests++;
      this.lastRequestAt = performance.now();
      // A huge block is asked for a host page at a time: one entry (its first page) per host page.
      const step = this.perHost[b]! * PAGE_SIZE;
      const from = Math.floor(msg.offset / step) * step;
      for (let o = from; o < msg.offset + Math.max(msg.length, 1); o += step) {
        const g = this.base[b]! + o / PAGE_SIZE;
        this.requests.push(g);
        if (!this.askedSet.has(g)) {
          this.askedSet.add(g);
          this.asked.push(g);
          if (!this.devicesLoaded) this.askedEarly = this.asked.length;
        }
        if (postcopyTuning.log && !this.arrival.has(g)) this.arrival.set(g, this.lastRequestAt);
      }
    }
    this.poke();
  }

  private queueNeighbours(g: number): void {
    const b = this.blockOf(g);
    if (this.perHost[b]! > 1) return; // a huge page is its own neighbourhood: 2 MiB went already
    const end = this.base[b]! + this.m.stream.blocks[b]!.length / PAGE_SIZE;
    const start = Math.max(this.base[b]!, g - postcopyTuning.prefetchBack);
    for (let n = g + 1; n < Math.min(end, g + 1 + postcopyTuning.prefetchAhead); n++) {
      // Zero pages too: an unsent page faults whatever its content, and a ZERO record costs a few bytes.
      if (!this.sent[n]) this.prefetch.push(n);
    }
    for (let n = g - 1; n >= start; n--) if (!this.sent[n]) this.prefetch.push(n);
    if (this.prefetch.length > PREFETCH_QUEUE_MAX) this.prefetch = this.prefetch.slice(-PREFETCH_QUEUE_MAX);
  }

  private blockOf(g: number): number {
    let b = this.base.length - 1;
    while (b > 0 && this.base[b]! > g) b--;
    return b;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.poke();
  }

  /** Wakes the loop's wait; one that comes while the loop is not waiting (it awaits a page thread) is kept for its
   * next wait. Dropped, QEMU's end during a thread's read went unnoticed: the loop then waited for PONGs that could
   * never come (for ever, before STALL_MS; a CI run hung on it). */
  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    if (w) w();
    else this.poked = true;
  }
  private poked = false;

  /** The recorded working set's early pages (asked for while the devices loaded), every page of the small blocks
   * (video RAM, ROMs, ACPI tables: zero ones too, as ZERO records; QEMU's display refresh reads the whole framebuffer
   * while the devices load, a fault and a round trip per unsent page), the rest of the working set and its
   * neighbours, then the main RAM's non-zero pages, those that differ from the parent's at the same place first. */
  private pushOrder(
    parent: Manifest | undefined,
    workingSet: WorkingSet,
  ): {
    order: Uint32Array; recent: number; small: number; ahead: number; beforeDevices: number; early: number;
    late: number;
  } {
    const small: number[] = [];
    const recent: number[] = [];
    const rest: number[] = [];
    const blocks = this.m.stream.blocks;
    const main = blocks.reduce((best, blk, b) => (blk.length > blocks[best]!.length ? b : best), 0);
    blocks.forEach((blk, b) => {
      if (b !== main) {
        for (let i = 0; i < blk.length / PAGE_SIZE; i++) small.push(this.base[b]! + i);
        return;
      }
      const pb = parent?.stream.blocks.find((x) => x.id === blk.id && x.length === blk.length);
      const table = this.tables[b]!;
      const pages = blk.length / PAGE_SIZE;
      for (let i = 0; i < pages; i++) {
        const h = table.subarray(i * HASH, (i + 1) * HASH);
        if (isZero(h)) continue;
        const t = Math.floor(i / PAGES_PER_TABLE);
        const changed = pb !== undefined && (pb.tables[t] !== blk.tables[t] && !this.sameAsParent(pb, i, h));
        (changed ? recent : rest).push(this.base[b]! + i);
      }
    });
    // The recorded pages, then their neighbours as a request would have brought them (the guest also read pages that
    // came in as neighbours of its requests: the record cannot tell which).
    const inRange = (g: number) => g < this.sent.length;
    const early = [...new Set(workingSet.pages.slice(0, workingSet.early))].filter(inRange);
    const ws = [...new Set(workingSet.pages)].filter(inRange);
    const isEarly = new Set(early);
    const late = ws.filter((g) => !isEarly.has(g));
    const near = new Set<number>(ws);
    const around: number[] = [];
    for (const g of ws) {
      const b = this.blockOf(g);
      if (this.perHost[b]! > 1) continue; // a huge page is its own neighbourhood
      const lo = Math.max(this.base[b]!, g - postcopyTuning.prefetchBack);
      const hi = Math.min(this.base[b]! + blocks[b]!.length / PAGE_SIZE, g + 1 + postcopyTuning.prefetchAhead);
      for (let n = lo; n < hi; n++) {
        if (near.has(n)) continue;
        near.add(n);
        around.push(n);
      }
    }
    return {
      order: Uint32Array.from([...early, ...small, ...late, ...around, ...recent, ...rest]), recent: recent.length,
      small: small.length, ahead: ws.length + small.length + around.length, beforeDevices: early.length + small.length,
      early: early.length, late: late.length,
    };
  }

  private parentTables = new Map<string, Buffer>();
  private sameAsParent(pb: Manifest['stream']['blocks'][number], i: number, h: Buffer): boolean {
    const t = Math.floor(i / PAGES_PER_TABLE);
    const key = pb.tables[t]!;
    let table = this.parentTables.get(key);
    if (!table) {
      table = this.store.blob(key);
      this.parentTables.set(key, table);
    }
    const j = i % PAGES_PER_TABLE;
    return table.subarray(j * HASH, (j + 1) * HASH).equals(h);
  }
}

function isZero(h: Buffer): boolean {
  for (let k = 0; k < h.length; k++) if (h[k] !== 0) return false;
  return true;
}
