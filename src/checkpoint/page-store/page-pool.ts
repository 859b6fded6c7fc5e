// A small pool of worker threads that hash (SHA-256) and compress (deflateRaw level 1) RAM pages for the capture
// path, so that the receiving thread only parses, looks up and writes. Pages travel in batches of shared memory
// (ArrayBuffers moved between threads, never copied): the page itself is copied once, into its batch slot.
//   hash      every data page of a batch → its SHA-256 (all-zero content → 32 zero bytes, the zero page's mark)
//   compress  the pages the store does not have yet → deflated bytes, or "raw" when deflating would not make them
//             smaller (pages that look incompressible are not even tried: looksIncompressible, the same test as the
//             single-threaded path in objects.ts, so both store the same bytes)
// A thread that dies or throws fails every batch it holds and every later call: the capture fails cleanly.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { looksIncompressible } from './objects.ts';

export const BATCH_PAGES = 256;
const PAGE = 4096;
const HASH = 32;

/** A batch of page records in one ArrayBuffer that moves (is transferred, not copied) between the receiving thread
 * and a pool thread: the receiving thread fills `data`, `block`, `index`, `zero`. (Not shared memory: V8 copies into
 * a SharedArrayBuffer element by element, ~3× slower than the memcpy into an ordinary one.) */
export class PageBatch {
  data!: Buffer;
  hashes!: Buffer;
  out!: Buffer;
  /** Per page after `compress`: deflated length, or -1 (store the page raw). */
  lens!: Int32Array;
  private buf!: ArrayBuffer;
  readonly block = new Uint32Array(BATCH_PAGES);
  readonly index = new Uint32Array(BATCH_PAGES);
  /** 1: a ZERO record (no data). */
  readonly zero = new Uint8Array(BATCH_PAGES);
  count = 0;

  constructor() {
    this.attach(new ArrayBuffer(BATCH_PAGES * (PAGE + HASH + PAGE + 4)));
  }

  /** The buffer, for a transfer (the views are unusable until it is attached again). */
  detach(): ArrayBuffer {
    return this.buf;
  }
  attach(buf: ArrayBuffer): void {
    const n = BATCH_PAGES;
    this.buf = buf;
    this.data = Buffer.from(buf, 0, n * PAGE);
    this.hashes = Buffer.from(buf, n * PAGE, n * HASH);
    this.out = Buffer.from(buf, n * (PAGE + HASH), n * PAGE);
    this.lens = new Int32Array(buf, n * (PAGE + HASH + PAGE), n);
  }

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
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  const { deflateRawSync, inflateRawSync } = require('node:zlib') as typeof import('node:zlib');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const incompressible = new Function('seen', `return ${looksIncompressibleSrc}`)(new Uint8Array(256)) as
    (b: Buffer) => boolean;
  const ZERO_SHA = createHash('sha256').update(Buffer.alloc(4096)).digest();
  /** Records in `span` (offset, stored, raw, codec per record, their hashes): the first that is not sound. */
  const verify = (span: Buffer, recs: Float64Array, hashes: Buffer): { k: number; why: string } | undefined => {
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
      if (out.length !== raw || !createHash('sha256').update(out).digest().equals(h))
        return { k, why: 'content does not match its hash' };
    }
    return undefined;
  };
  parentPort!.on('message', (m: { id: number; op: 'hash' | 'compress' | 'crash' | 'verify'; buf: ArrayBuffer;
    count: number; sel?: Uint16Array; recs?: Float64Array; hashes?: Uint8Array }) => {
    try {
      if (m.op === 'verify') {
        const h = m.hashes!;
        const bad = verify(Buffer.from(m.buf), m.recs!, Buffer.from(h.buffer, h.byteOffset, h.byteLength));
        return parentPort!.postMessage({ id: m.id, buf: m.buf, bad }, [m.buf]);
      }
      const n = 256;
      const data = Buffer.from(m.buf, 0, n * 4096);
      if (m.op === 'crash') throw new Error('injected failure');
      if (m.op === 'hash') {
        const hashes = Buffer.from(m.buf, n * 4096, n * 32);
        for (let i = 0; i < m.count; i++) {
          const h = createHash('sha256').update(data.subarray(i * 4096, (i + 1) * 4096)).digest();
          if (h.equals(ZERO_SHA)) hashes.fill(0, i * 32, (i + 1) * 32);
          else h.copy(hashes, i * 32);
        }
      } else {
        const out = Buffer.from(m.buf, n * (4096 + 32), n * 4096);
        const lens = new Int32Array(m.buf, n * (4096 + 32 + 4096), n);
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
      parentPort!.postMessage({ id: m.id, buf: m.buf }, [m.buf]);
    } catch (e) {
      parentPort!.postMessage({ id: m.id, buf: m.buf, error: (e as Error).message }, [m.buf]);
    }
  });
}

interface Reply { id: number; buf: ArrayBuffer; error?: string; bad?: { k: number; why: string } }
interface Job { batch?: PageBatch; resolve: (r: Reply) => void; reject: (e: Error) => void }
interface Thread { worker: Worker; jobs: Map<number, Job> }

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
      const t: Thread = { worker: new Worker(code, { eval: true }), jobs: new Map() };
      t.worker.unref();
      t.worker.on('message', (m: Reply) => {
        const job = t.jobs.get(m.id);
        t.jobs.delete(m.id);
        if (!job) return;
        job.batch?.attach(m.buf);
        if (m.error) {
          this.fail(new Error(`capture thread ${k}: ${m.error}`));
          job.reject(this.broken!);
        } else job.resolve(m);
      });
      const died = (why: string) => this.fail(new Error(`capture thread ${k} ${why}`));
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
    await this.post(b, { op, count: b.count, sel }, b.detach());
  }

  private post(batch: PageBatch | undefined, msg: object, buf: ArrayBuffer): Promise<Reply> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.closed) return Promise.reject(new Error('the capture thread pool is closed'));
    // The least busy thread.
    let t = this.threads[0]!;
    for (const x of this.threads) if (x.jobs.size < t.jobs.size) t = x;
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      t.jobs.set(id, { batch, resolve, reject });
      t.worker.postMessage({ id, ...msg, buf }, [buf]);
    });
  }

  /** Checks the records laid out in `span` (an ArrayBuffer of its own, moved to the thread): per record its offset,
   * stored length, raw length and codec in `recs`, its hash in `hashes`. Resolves with the first unsound one. */
  async verify(span: ArrayBuffer, recs: Float64Array, hashes: Uint8Array): Promise<Reply['bad']> {
    return (await this.post(undefined, { op: 'verify', recs, hashes }, span)).bad;
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
  /** Tests: the thread handling the next job is terminated (as if it died). */
  async killOne(): Promise<void> {
    await this.threads[0]!.worker.terminate();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.fail(new Error('the capture thread pool is closed'));
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}
