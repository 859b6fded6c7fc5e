// Lazy restore's page server: Oriel plays the source of a QEMU 7.2 postcopy migration, reading pages from the store.
// It sends the header, the postcopy commands and the device state (stream/postcopy.ts), after which QEMU runs the
// guest; then it answers the pages QEMU requests on the return path first (each with a few of its neighbours: the
// guest tends to read on), and pushes every other non-zero page behind them, the pages the guest wrote between the
// parent checkpoint and this one first (the most recently written pages the store can tell; then block and page
// order), after every page of the small blocks (video RAM, ROMs). The main RAM's zero pages are pushed only near a
// request, as ZERO records: pages never sent read as zeros once the stream has ended. No page goes twice (QEMU
// would exit). Few bytes are queued ahead of a request: background pages are written only while the socket is not
// backed up. The page tables, the order and the device-state bytes are prepared before QEMU starts (constructor).
import type { Socket } from 'node:net';
import { setImmediate as tick } from 'node:timers/promises';
import {
  PAGE_SIZE,
  PostcopyPageEncoder,
  ReturnPathParser,
  postcopyEnd,
  postcopyPreamble,
  type ReturnPathMessage,
} from './stream/index.ts';
import { PAGES_PER_TABLE, type CheckpointStore, type Manifest } from './page-store/index.ts';

const HASH = 32;
/** Pages per write while pushing in the background (~128 KiB). */
const BATCH_PAGES = 32;
/** Neighbours sent after a requested page. */
const PREFETCH_PAGES = 15;
/** Neighbours before it (a device load or the guest may walk memory downwards). */
const PREFETCH_BACK_PAGES = 8;
const PREFETCH_QUEUE_MAX = 1024;
/** PING value after the device state in the package. */
const DEVICES_LOADED = 0x4f52_4c01;

export interface PostcopyStats {
  /** How the background pages were ordered. */
  order: 'recent-first' | 'stored';
  /** Non-zero pages written since the parent checkpoint (pushed first). */
  recentPages: number;
  /** Pages of the blocks other than the main RAM (video RAM, ROMs), zero ones included: pushed before all others. */
  smallBlockPages: number;
  /** Pages QEMU asked for, and how many of them had not been sent yet when asked. */
  requests: number;
  requestedPages: number;
  prefetchedPages: number;
  pushedPages: number;
  streamBytes: number;
  /** performance.now() when the last page was written, and when QEMU confirmed the end (SHUT 0). */
  pushedAt: number;
  shutAt: number;
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

  /** Reads the page tables and orders the pages: everything that needs no QEMU, done before it starts. */
  constructor(
    private readonly store: CheckpointStore,
    private readonly m: Manifest,
    parent?: Manifest,
  ) {
    let total = 0;
    this.tables = m.stream.blocks.map((b, i) => {
      this.base.push(total);
      this.blockIndex.set(b.id, i);
      total += b.length / PAGE_SIZE;
      return store.blockTable(b);
    });
    this.sent = new Uint8Array(total);
    const { order, recent, small } = this.pushOrder(parent);
    this.order = order;
    this.stats = {
      order: parent && recent > 0 ? 'recent-first' : 'stored', recentPages: recent, smallBlockPages: small,
      requests: 0, requestedPages: 0,
      prefetchedPages: 0, pushedPages: 0, streamBytes: 0, pushedAt: 0, shutAt: 0,
    };
    this.preamble = postcopyPreamble({
      header: this.store.blob(this.m.stream.header),
      ramSectionId: this.m.stream.ramSectionId,
      blocks: this.m.stream.blocks.map((b) => ({ id: b.id, length: b.length })),
      deviceState: this.store.blob(this.m.stream.deviceState),
      devicesLoadedPing: DEVICES_LOADED,
    });
  }

  private readonly order: Uint32Array;

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
    const enc = new PostcopyPageEncoder(this.m.stream.ramSectionId, this.m.stream.blocks);
    let next = 0; // into this.order
    for (;;) {
      if (this.failure) throw this.failure;
      while (this.requests.length) {
        const g = this.requests.shift()!;
        if (this.sent[g]) continue;
        this.send(enc, g);
        this.stats.requestedPages++;
        this.queueNeighbours(g);
      }
      while (enc.pending < BATCH_PAGES * PAGE_SIZE && this.prefetch.length) {
        const g = this.prefetch.shift()!;
        if (this.sent[g]) continue;
        this.send(enc, g);
        this.stats.prefetchedPages++;
      }
      // Until the devices are loaded, only the small blocks go in the background: each request QEMU's main thread
      // waits on (device loads walk virtqueues in guest RAM) would queue behind main-RAM pages.
      const until = this.devicesLoaded ? this.order.length : this.stats.smallBlockPages;
      if (!this.sock.writableNeedDrain) {
        while (enc.pending < BATCH_PAGES * PAGE_SIZE && next < until) {
          const g = this.order[next++]!;
          if (this.sent[g]) continue;
          this.send(enc, g);
          this.stats.pushedPages++;
        }
      }
      const part = enc.take();
      if (part.length) this.write(part);
      // The stream ends only once QEMU has loaded the devices (their loads may still ask for pages, zero ones too).
      if (next >= this.order.length && !this.requests.length && !this.prefetch.length && this.devicesLoaded) break;
      if (next >= until && !this.requests.length && !this.prefetch.length) {
        await new Promise<void>((r) => (this.wake = r));
        continue;
      }
      if (this.sock.writableNeedDrain) await new Promise<void>((r) => (this.wake = r));
      else await tick(); // lets the return path's data in
    }
    this.stats.pushedAt = performance.now();
    this.mark('all pages sent');
    this.write(postcopyEnd(this.m.stream.ramSectionId));
    while (this.shut === undefined && !this.failure) await new Promise<void>((r) => (this.wake = r));
    if (this.shut === undefined) throw this.failure!;
    if (this.shut !== 0) throw new Error(`QEMU reported a failed restore (return path SHUT ${this.shut}; see its log)`);
    this.stats.shutAt = performance.now();
    this.mark('QEMU has all pages (SHUT 0)');
    return { ...this.stats };
  }

  private send(enc: PostcopyPageEncoder, g: number): void {
    const b = this.blockOf(g);
    const i = g - this.base[b]!;
    const h = this.tables[b]!.subarray(i * HASH, (i + 1) * HASH);
    enc.page(b, i, isZero(h) ? null : this.store.objects.get(h));
    this.sent[g] = 1;
  }

  private write(b: Buffer, done?: () => void): void {
    this.stats.streamBytes += b.length;
    this.sock.write(b, done);
  }

  private onMessage(msg: ReturnPathMessage): void {
    if (msg.type === 'shut') this.shut = msg.status;
    else if (msg.type === 'pong' && msg.value === DEVICES_LOADED) {
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
      for (let o = msg.offset; o < msg.offset + Math.max(msg.length, 1); o += PAGE_SIZE) {
        this.requests.push(this.base[b]! + o / PAGE_SIZE);
      }
    }
    this.poke();
  }

  private queueNeighbours(g: number): void {
    const b = this.blockOf(g);
    const end = this.base[b]! + this.m.stream.blocks[b]!.length / PAGE_SIZE;
    const start = Math.max(this.base[b]!, g - PREFETCH_BACK_PAGES);
    for (let n = g + 1; n < Math.min(end, g + 1 + PREFETCH_PAGES); n++) {
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

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Every page of the small blocks first (video RAM, ROMs, ACPI tables: zero ones too, as ZERO records; QEMU's
   * display refresh reads the whole framebuffer while the devices load, a fault and a round trip per unsent page),
   * then the main RAM's non-zero pages, those that differ from the parent's at the same place first. */
  private pushOrder(parent: Manifest | undefined): { order: Uint32Array; recent: number; small: number } {
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
    return { order: Uint32Array.from([...small, ...recent, ...rest]), recent: recent.length, small: small.length };
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
