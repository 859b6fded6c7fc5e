// A small pool of worker threads that hash (SHA-256) and compress (deflateRaw level 1) RAM pages for the capture
// path, so that the receiving thread only parses, looks up and writes. Pages travel in batches of shared memory
// (SharedArrayBuffer): the page itself is copied once, into its batch slot, and a job's message names the batch by
// number only (each thread is handed a batch's memory once, the first time it sees it). Batches are the pool's, reused
// by every capture on it: the memory in use stays that of the most batches ever in flight at once.
//   hash      every data page of a batch → its SHA-256 (all-zero content → 32 zero bytes, the zero page's mark)
//   compress  the pages the store does not have yet → deflated bytes, or "raw" when deflating would not make them
//             smaller (pages that look incompressible are not even tried: looksIncompressible, the same test as the
//             single-threaded path in objects.ts, so both store the same bytes)
// and for the restore (records read from the packs, in buffers moved to the thread):
//   verify    records checked against their hashes (the check before a restore)
//   decode    the same, and their contents back (the pages sent to QEMU)
// A thread that dies or throws fails every batch it holds and every later call: the capture fails cleanly.
// (Batches used to move between threads as transferred ArrayBuffers: each move made V8 account 2 MiB of new external
// memory, so the receiving thread spent much of its time in full garbage collections.)
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { looksIncompressible } from './objects.ts';

export const BATCH_PAGES = 256;
const PAGE = 4096;
const HASH = 32;
let batchIds = 0;

/** A batch of page records in shared memory: the receiving thread fills `data`, `block`, `index`, `zero`; a pool
 * thread writes `hashes`, then `out` and `lens`. Only one side touches it at a time (the job's message and its reply
 * hand it over). */
export class PageBatch {
  readonly id = ++batchIds;
  readonly mem = new SharedArrayBuffer(BATCH_PAGES * (PAGE + HASH + PAGE + 4));
  readonly data = Buffer.from(this.mem, 0, BATCH_PAGES * PAGE);
  readonly hashes = Buffer.from(this.mem, BATCH_PAGES * PAGE, BATCH_PAGES * HASH);
  readonly out = Buffer.from(this.mem, BATCH_PAGES * (PAGE + HASH), BATCH_PAGES * PAGE);
  /** Per page after `compress`: deflated length, or -1 (store the page raw). */
  readonly lens = new Int32Array(this.mem, BATCH_PAGES * (PAGE + HASH + PAGE), BATCH_PAGES);
  readonly block = new Uint32Array(BATCH_PAGES);
  readonly index = new Uint32Array(BATCH_PAGES);
  /** 1: a ZERO record (no data). */
  readonly zero = new Uint8Array(BATCH_PAGES);
  count = 0;
  /** Some record of the batch is a data page (else there is nothing to hash). */
  anyData = false;

  page(i: number): Buffer {
    return this.data.subarray(i * PAGE, (i + 1) * PAGE);
  }
  hash(i: number): Buffer {
    return this.hashes.subarray(i * HASH, (i + 1) * HASH);
  }
}

/** The thread's program (run with `eval`: no loader or build step needed in either the tsx or the compiled server). */
function threadMain(looksIncompressibleSrc: string): void {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { parentPort } = require('node:worker_threads') as typeof import('node:worker_threads');
  const { createHash, hash: oneShot } = require('node:crypto') as typeof import('node:crypto');
  const { deflateRawSync, inflateRawSync } = require('node:zlib') as typeof import('node:zlib');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const incompressible = new Function('seen', `return ${looksIncompressibleSrc}`)(new Uint8Array(256)) as
    (b: Buffer) => boolean;
  const ZERO_SHA = createHash('sha256').update(Buffer.alloc(4096)).digest();
  const hashOf: (b: Buffer) => Buffer = oneShot
    ? (b) => oneShot('sha256', b, 'buffer') as Buffer
    : (b) => createHash('sha256').update(b).digest();
  /** Records in `span` (offset, stored, raw, codec per record, their hashes): the first that is not sound. With
   * `into`, their contents laid end to end there. */
  type Bad = { k: number; why: string } | undefined;
  const verify = (span: Buffer, recs: Float64Array, hashes: Buffer, into?: Buffer): Bad => {
    let at = 0;
    for (let k = 0; k < recs.length / 4; k++) {
      const [o, stored, raw, codec] = [recs[k * 4]!, recs[k * 4 + 1]!, recs[k * 4 + 2]!, recs[k * 4 + 3]!];
      const h = hashes.subarray(k * 32, k * 32 + 32);
      if (!span.subarray(o, o + 32).equals(h)) return { k, why: 'record header names another object' };
      const data = span.subarray(o + 41, o + 41 + stored);
      let out: Buffer;
      try {
        out = codec === 1 ? inflateRawSync(data) : data;
      } catch (e) {
        return { k, why: `cannot inflate: ${(e as Error).message}` };
      }
      if (out.length !== raw || !hashOf(out).equals(h)) return { k, why: 'content does not match its hash' };
      if (into) at += out.copy(into, at);
    }
    return undefined;
  };
  /** Each batch's memory, as first sent (by batch number). */
  const batches = new Map<number, { data: Buffer; hashes: Buffer; out: Buffer; lens: Int32Array }>();
  parentPort!.on('message', (m: { id: number; op: 'hash' | 'compress' | 'crash' | 'verify' | 'exit';
    buf: ArrayBuffer; batch: number; mem?: SharedArrayBuffer; count: number; sel?: Uint16Array; recs?: Float64Array;
    hashes?: Uint8Array; outBytes?: number }) => {
    // Between jobs, so never inside a zlib call: Node 20 aborts the whole process when a thread is terminated while
    // it makes a zlib handle ("close before init", node_zlib.cc), as one test run showed.
    if (m.op === 'exit') process.exit(m.id);
    try {
      if (m.op === 'verify') {
        const h = m.hashes!;
        const out = m.outBytes === undefined ? undefined : new ArrayBuffer(m.outBytes);
        const bad = verify(Buffer.from(m.buf), m.recs!, Buffer.from(h.buffer, h.byteOffset, h.byteLength),
          out && Buffer.from(out));
        return parentPort!.postMessage({ id: m.id, buf: out ?? m.buf, bad }, [out ?? m.buf]);
      }
      const n = 256;
      if (m.mem) {
        batches.set(m.batch, {
          data: Buffer.from(m.mem, 0, n * 4096), hashes: Buffer.from(m.mem, n * 4096, n * 32),
          out: Buffer.from(m.mem, n * (4096 + 32), n * 4096), lens: new Int32Array(m.mem, n * (4096 + 32 + 4096), n),
        });
      }
      const b = batches.get(m.batch);
      if (!b) throw new Error(`batch ${m.batch} was never sent`);
      const { data, hashes, out, lens } = b;
      if (m.op === 'crash') throw new Error('injected failure');
      if (m.op === 'hash') {
        for (let i = 0; i < m.count; i++) {
          const h = hashOf(data.subarray(i * 4096, (i + 1) * 4096));
          if (h.equals(ZERO_SHA)) hashes.fill(0, i * 32, (i + 1) * 32);
          else h.copy(hashes, i * 32);
        }
      } else {
        for (const i of m.sel!) {
          const page = data.subarray(i * 4096, (i + 1) * 4096);
          lens[i] = -1;
          if (incompressible(page)) continue;
          const z = deflateRawSync(page, { level: 1 });
          if (z.length < 4096) {
            z.copy(out, i * 4096);
            lens[i] = z.length;
          }
        }
      }
      parentPort!.postMessage({ id: m.id });
    } catch (e) {
      parentPort!.postMessage({ id: m.id, error: (e as Error).message });
    }
  });
}

interface Reply { id: number; buf?: ArrayBuffer; error?: string; bad?: { k: number; why: string } }
interface Job { resolve: (r: Reply) => void; reject: (e: Error) => void }
/** `known`: the batches whose memory the thread has. */
interface Thread { worker: Worker; jobs: Map<number, Job>; known: Set<number> }

export const defaultPoolSize = (): number => Math.max(1, Math.min(4, availableParallelism()));

/** Threads a capture worker hashes and compresses on: ORIEL_CAPTURE_THREADS (0: none, all in the receiving thread),
 * else one per core up to 4. */
export function captureThreads(env = process.env): number {
  const v = env.ORIEL_CAPTURE_THREADS;
  if (v === undefined || v === '') return defaultPoolSize();
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 64) throw new Error(`ORIEL_CAPTURE_THREADS must be 0–64, not '${v}'`);
  return n;
}

export class PagePool {
  private readonly threads: Thread[] = [];
  private nextId = 1;
  private broken?: Error;
  private closed = false;

  constructor(readonly size = defaultPoolSize()) {
    // looksIncompressible's source, with its module-level `seen` table passed in as a parameter.
    const src = looksIncompressible.toString();
    // `__name`: the helper tsx's transform may call in function bodies (keepNames), absent from an eval'd thread.
    const code = `var __name = (f) => f;\n(${threadMain.toString()})(${JSON.stringify(src)})`;
    for (let k = 0; k < size; k++) {
      const t: Thread = { worker: new Worker(code, { eval: true }), jobs: new Map(), known: new Set() };
      t.worker.unref();
      t.worker.on('message', (m: Reply) => {
        const job = t.jobs.get(m.id);
        t.jobs.delete(m.id);
        if (!job) return;
        if (m.error) {
          this.fail(new Error(`page thread ${k}: ${m.error}`));
          job.reject(this.broken!);
        } else job.resolve(m);
      });
      const died = (why: string) => this.fail(new Error(`page thread ${k} ${why}`));
      t.worker.on('error', (e) => died(`failed: ${e.message}`));
      t.worker.on('exit', (code) => { if (!this.closed) died(`exited (code ${code})`); });
      this.threads.push(t);
    }
  }

  /** Fails everything pending and everything after. */
  private fail(e: Error): void {
    this.broken ??= e;
    for (const t of this.threads) {
      for (const j of t.jobs.values()) j.reject(this.broken);
      t.jobs.clear();
    }
  }

  private async run(op: 'hash' | 'compress' | 'crash', b: PageBatch, sel?: Uint16Array): Promise<void> {
    const t = this.idlest();
    const first = !t.known.has(b.id);
    t.known.add(b.id);
    await this.post({ op, batch: b.id, count: b.count, sel, ...(first ? { mem: b.mem } : {}) }, undefined, t);
  }

  /** The least busy thread. */
  private idlest(): Thread {
    let t = this.threads[0]!;
    for (const x of this.threads) if (x.jobs.size < t.jobs.size) t = x;
    return t;
  }

  private post(msg: object, buf?: ArrayBuffer, t = this.idlest()): Promise<Reply> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.closed) return Promise.reject(new Error('the page thread pool is closed'));
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      t.jobs.set(id, { resolve, reject });
      if (buf) t.worker.postMessage({ id, ...msg, buf }, [buf]);
      else t.worker.postMessage({ id, ...msg });
    });
  }

  private readonly spare: PageBatch[] = [];
  /** An empty batch: one a finished job handed back, or a new one. */
  batch(): PageBatch {
    return this.spare.pop() ?? new PageBatch();
  }
  /** Hands back a batch no job uses any more (after a failure of the pool it is dropped: a thread that was still
   * writing into it may not have stopped). */
  recycle(b: PageBatch): void {
    b.count = 0;
    b.anyData = false;
    if (!this.broken && !this.closed) this.spare.push(b);
  }

  /** Checks the records laid out in `span` (an ArrayBuffer of its own, moved to the thread): per record its offset,
   * stored length, raw length and codec in `recs`, its hash in `hashes`. Resolves with the first unsound one. */
  async verify(span: ArrayBuffer, recs: Float64Array, hashes: Uint8Array): Promise<Reply['bad']> {
    return (await this.post({ op: 'verify', recs, hashes }, span)).bad;
  }

  /** `verify`, and the records' contents laid end to end (`outBytes`: the sum of their raw lengths) in a buffer of
   * their own: a lazy restore's huge page decoded off the thread that serves QEMU. Throws at an unsound record. */
  async decode(span: ArrayBuffer, recs: Float64Array, hashes: Uint8Array, outBytes: number): Promise<Buffer> {
    const r = await this.post({ op: 'verify', recs, hashes, outBytes }, span);
    if (r.bad) throw Object.assign(new Error(r.bad.why), { record: r.bad.k });
    return Buffer.from(r.buf!);
  }

  /** SHA-256 of every page of the batch (its ZERO records' slots are hashed too, and ignored by the caller). */
  hash(b: PageBatch): Promise<void> {
    return this.run('hash', b);
  }
  /** Deflates the pages `sel` names into `b.out` / `b.lens`. */
  compress(b: PageBatch, sel: Uint16Array): Promise<void> {
    return this.run('compress', b, sel);
  }
  /** Tests: a thread throws on its next job. */
  crashOne(b: PageBatch): Promise<void> {
    return this.run('crash', b);
  }
  /** Tests: the thread handling the next job exits (as if it died). */
  async killOne(): Promise<void> {
    await PagePool.end(this.threads[0]!.worker, 1);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.fail(new Error('the page thread pool is closed'));
    await Promise.all(this.threads.map((t) => PagePool.end(t.worker, 0)));
  }

  /** Asks a thread to exit after its current job (the 'exit' op); terminated only if it has not within 5 s. */
  private static async end(w: Worker, code: number): Promise<void> {
    if (w.threadId < 0) return; // exited already
    let late: NodeJS.Timeout | undefined;
    await new Promise<void>((r) => {
      w.once('exit', () => r());
      w.postMessage({ id: code, op: 'exit' });
      late = setTimeout(() => void w.terminate().then(() => r()), 5000);
    });
    clearTimeout(late);
  }
}
