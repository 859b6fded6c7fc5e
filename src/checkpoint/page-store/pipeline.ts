// The capture's page path across threads: the receiving thread parses and copies each page record into a batch
// (PageBatch, shared memory), a pool thread hashes the batch, the receiving thread places the hashes in the page
// tables and looks the new ones up (one SQL query per batch), a pool thread compresses the pages the store does not
// have, and the receiving thread appends them to the pack, batch after batch in stream order. Several batches are in
// flight at once (hashing and compressing on every pool thread while the next chunk is parsed); `congested` tells
// the receiver to stop reading its socket until `room()`.
// Order: every page record (ZERO ones too) goes through the batches, and placing and writing run in stream order,
// so a page sent twice (precopy) keeps its last record, as in the single-threaded path.
import type { WriteSession } from './objects.ts';
import { CODEC_DEFLATE, CODEC_RAW } from './codec.ts';
import { BATCH_PAGES, type PageBatch, type PagePool } from './page-pool.ts';

const PAGE = 4096;
const HASH = 32;
const noop = (): void => undefined;
const ZERO_HASH = Buffer.alloc(HASH);

export interface PipelineTarget {
  session: WriteSession;
  /** Puts the page's hash (the 32 bytes of `hashes` at `offset`; null: a zero page) in its table; true when the page
   * must be stored (not zero, not unchanged since the parent checkpoint). */
  placeAt(block: number, index: number, hashes: Buffer | null, offset: number): boolean;
}

export class PagePipeline {
  private cur?: PageBatch;
  private inFlight = 0;
  private placeTail: Promise<unknown> = Promise.resolve();
  private writeTail: Promise<unknown> = Promise.resolve();
  private failed?: Error;
  private waiters: (() => void)[] = [];

  /** Batches sent but not yet placed (being hashed, or waiting to be). */
  private hashing = 0;
  private readonly maxHashing: number;
  private readonly maxInFlight: number;

  constructor(private readonly pool: PagePool, private readonly target: PipelineTarget) {
    // Enough hashing queued to keep every thread busy while the next chunk is parsed; batches already placed (waiting
    // for their compression or their write) count against a larger bound, so that a thread's queue never runs dry
    // behind one batch's compression.
    this.maxHashing = 3 * pool.size;
    this.maxInFlight = 12 * pool.size;
  }

  /** One page record, in stream order (`data`: a view of the received chunk, copied here). */
  page(block: number, index: number, data: Buffer | null): void {
    if (data) return this.pageAt(block, index, data, 0);
    this.slot(block, index, 1);
    if (this.cur!.count === BATCH_PAGES) this.dispatch();
  }

  /** The next place in the current batch for a page of `block` at `index`: its batch and position. */
  private slot(block: number, index: number, zero: number): { b: PageBatch; i: number } {
    if (this.failed) throw this.failed;
    const b = (this.cur ??= this.pool.batch());
    const i = b.count++;
    b.block[i] = block;
    b.index[i] = index;
    b.zero[i] = zero;
    return { b, i };
  }

  /** A data page record, in stream order: the 4096 bytes of `chunk` at `offset`, copied here into the batch. */
  pageAt(block: number, index: number, chunk: Buffer, offset: number): void {
    const { b, i } = this.slot(block, index, 0);
    b.anyData = true;
    // `fill` with a page-long value is one memcpy in C++; `copy` into shared memory takes V8's relaxed (atomic
    // word by word) copy, ~20 % slower a page on memory not in cache.
    b.data.fill(chunk.subarray(offset, offset + PAGE), i * PAGE, (i + 1) * PAGE);
    if (b.count === BATCH_PAGES) this.dispatch();
  }

  /** Enough batches are in flight: the receiver should stop reading until `room()`. */
  get congested(): boolean {
    return this.hashing >= this.maxHashing || this.inFlight >= this.maxInFlight;
  }
  private wake(): void {
    if (!this.congested) for (const w of this.waiters.splice(0)) w();
  }
  room(): Promise<void> {
    if (!this.congested || this.failed) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  /** True while pages are buffered or in flight. */
  get busy(): boolean {
    return this.inFlight > 0 || (this.cur?.count ?? 0) > 0;
  }

  /** Sends the last partial batch and waits until every page is placed and written; throws the first failure. */
  async flush(): Promise<void> {
    if (this.cur && this.cur.count > 0) this.dispatch();
    await this.writeTail;
    if (this.failed) throw this.failed;
  }

  /** Stops: pages still in flight are dropped (the writer is being aborted). */
  cancel(why: string): void {
    this.fail(new Error(why));
  }

  private fail(e: unknown): void {
    this.failed ??= e instanceof Error ? e : new Error(String(e));
    for (const w of this.waiters.splice(0)) w();
  }

  private dispatch(): void {
    const b = this.cur!;
    this.cur = undefined;
    this.inFlight++;
    this.hashing++;
    const hashed = b.anyData ? this.pool.hash(b) : Promise.resolve();
    hashed.catch(noop);
    const placed = this.placeTail.then(() => hashed).finally(() => {
      this.hashing--;
      this.wake();
    }).then(() => this.place(b));
    placed.catch(noop);
    this.placeTail = placed.catch(noop);
    const compressed = placed.then(async (sel) => {
      if (sel.length) await this.pool.compress(b, Uint16Array.from(sel));
      return sel;
    });
    compressed.catch(noop);
    this.writeTail = this.writeTail
      .then(() => compressed)
      .then((sel) => this.write(b, sel))
      .catch((e: unknown) => this.fail(e))
      .finally(() => {
        this.pool.recycle(b);
        this.inFlight--;
        this.wake();
      });
  }

  /** Places every record of the batch in its table; returns the slots of the pages to store. */
  private place(b: PageBatch): number[] {
    if (this.failed) throw this.failed;
    const cand: number[] = [];
    const t = this.target;
    const hashes = b.hashes;
    for (let i = 0; i < b.count; i++) {
      const o = i * HASH;
      // A ZERO record, or a data page the thread found all zero (it marks them with the zero hash).
      const zero = b.zero[i] === 1 || (hashes[o] === 0 && ZERO_HASH.compare(hashes, o, o + HASH) === 0);
      if (t.placeAt(b.block[i]!, b.index[i]!, zero ? null : hashes, o)) cand.push(i);
    }
    if (!cand.length) return cand;
    const fresh = t.session.claimNew(cand.map((i) => b.hash(i)));
    return cand.filter((_, k) => fresh[k]);
  }

  private write(b: PageBatch, sel: number[]): void {
    if (this.failed) throw this.failed;
    for (const i of sel) {
      const hash = Buffer.from(b.hash(i)); // the batch is reused: the session keeps its own copy
      const len = b.lens[i]!;
      const s = this.target.session;
      if (len >= 0) s.putStored(hash, b.out.subarray(i * PAGE, i * PAGE + len), { raw: PAGE, codec: CODEC_DEFLATE });
      else s.putStored(hash, b.page(i), { raw: PAGE, codec: CODEC_RAW });
    }
  }
}
