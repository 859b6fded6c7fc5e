// The checkpoint store: one folder (default <dataDir>/checkpoints) shared by every VM, so identical pages of
// different VMs and checkpoints are stored once.
//   index.db, packs/   content-addressed objects (objects.ts)
//   manifests/<id>.json one per checkpoint, written last, atomically (manifest.ts)
//   disks/<vmId>/      the checkpoints' disk images (incremental qcow2 chain; disk.ts)
//   lock               pid of the process that has the store open (the server)
//   writers/<pid>.json capture workers (worker/) writing a checkpoint from their own process
// Writers share the store, GC and verify have it alone (a readers-writer lock where checkpoint writers are the
// "readers"): GC never runs while a checkpoint is being written, so it can never delete an object a half-written
// checkpoint relies on (written, or found already stored and not written again). Capture workers are writers too:
// GC and verify also wait while a live worker is registered, and a pack no index row names is deleted at open only
// when no worker is (it may be a running worker's).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, isOurs, readPidfile } from '../../host/process.ts';
import type { PageRecord, ParsedStream, RamBlock, StreamSink } from '../stream/index.ts';
import { PAGE_SIZE } from '../stream/index.ts';
import { HASH_BYTES, ObjectStore, sha256, type FaultInjection, type WriteSession } from './objects.ts';
import { defaultPoolSize, PagePool } from './page-pool.ts';
import { PagePipeline } from './pipeline.ts';
import { MANIFEST_FORMAT, PAGES_PER_TABLE, writeFileAtomic, type Manifest, type ManifestBlock } from './manifest.ts';

const ZERO_HASH = Buffer.alloc(HASH_BYTES);
const ZERO_PAGE_SHA = sha256(Buffer.alloc(PAGE_SIZE));

export class StoreLockedError extends Error {
  override name = 'StoreLockedError';
}

export interface StoreOptions {
  faults?: FaultInjection;
  /** A capture worker: shares the store with the server that holds the lock (no lock of its own, no recovery at
   * open), registered in writers/ while open; `marker` is a string of its command line (a recycled pid is never
   * mistaken for it). */
  worker?: { marker: string };
}

export interface VerifyReport {
  objects: number;
  corrupt: string[];
  /** Checkpoint id → objects it names that are missing or corrupt. */
  broken: Record<string, string[]>;
  ok: boolean;
}

export class CheckpointStore {
  readonly objects: ObjectStore;
  private exclusiveTail: Promise<unknown> = Promise.resolve();
  private exclusiveRunning = false;
  private writers = 0;
  private writersIdle: (() => void)[] = [];
  private readonly manifestsDir: string;
  private readonly writersDir: string;
  private readonly registration?: string;
  /** Test hook, handed on to capture workers too. */
  readonly faults?: FaultInjection;

  constructor(readonly root: string, opts: StoreOptions = {}) {
    this.faults = opts.faults;
    mkdirSync(root, { recursive: true, mode: 0o700 });
    this.manifestsDir = join(root, 'manifests');
    this.writersDir = join(root, 'writers');
    for (const d of [this.manifestsDir, this.writersDir, join(root, 'disks')])
      mkdirSync(d, { recursive: true, mode: 0o700 });
    if (opts.worker) {
      this.registration = join(this.writersDir, `${process.pid}.json`);
      writeFileSync(this.registration, JSON.stringify({ pid: process.pid, marker: opts.worker.marker }), {
        mode: 0o600,
      });
    } else {
      takeLock(join(root, 'lock'));
    }
    this.objects = new ObjectStore(root, opts.faults);
    if (!opts.worker) this.recoverOrphans();
  }

  close(): void {
    this.objects.close();
    if (this.registration) rmSync(this.registration, { force: true });
    else rmSync(join(this.root, 'lock'), { force: true });
  }

  /** Capture workers of other processes that have the store open now (stale registrations are dropped). */
  liveWorkers(): number[] {
    const out: number[] = [];
    for (const f of readdirSync(this.writersDir)) {
      const p = join(this.writersDir, f);
      let reg: { pid: number; marker: string };
      try {
        reg = JSON.parse(readFileSync(p, 'utf8')) as { pid: number; marker: string };
      } catch {
        continue; // being written
      }
      if (reg.pid === process.pid) continue;
      if (isOurs(reg.pid, reg.marker)) out.push(reg.pid);
      else if (!this.registration) rmSync(p, { force: true });
    }
    return out;
  }

  /** Deletes what dead writers left: packs no index row names, manifest temp files of dead processes. Does nothing
   * to packs while a capture worker is live (they may be its own). */
  recoverOrphans(): string[] {
    const removed = this.liveWorkers().length ? [] : this.objects.recover();
    for (const f of readdirSync(this.manifestsDir)) {
      const m = /\.tmp-(\d+)$/.exec(f);
      if (m && !isAlive(Number(m[1]))) rmSync(join(this.manifestsDir, f), { force: true });
    }
    return removed;
  }

  /** Runs `fn` alone: after every checkpoint being written has finished, and none starts meanwhile. */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.exclusiveTail.then(async () => {
      this.exclusiveRunning = true;
      try {
        while (this.writers > 0) await new Promise<void>((r) => this.writersIdle.push(r));
        // Writers in other processes (capture workers) cannot be waited for by promise: poll their registrations.
        while (this.liveWorkers().length > 0) await new Promise((r) => setTimeout(r, 100));
        return await fn();
      } finally {
        this.exclusiveRunning = false;
      }
    });
    this.exclusiveTail = run.catch(() => undefined);
    return run;
  }

  /** Registers a checkpoint writer (waits while GC or verify runs). */
  private async enterWriter(): Promise<void> {
    while (this.exclusiveRunning) await this.exclusiveTail;
    this.writers++;
  }

  /** Holds a writer's place without writing (the server, while a capture worker writes for it): GC and verify wait
   * until the returned function is called. */
  async holdWriter(): Promise<() => void> {
    await this.enterWriter();
    let held = true;
    return () => {
      if (held) this.leaveWriter();
      held = false;
    };
  }
  leaveWriter(): void {
    this.writers--;
    if (this.writers === 0) for (const r of this.writersIdle.splice(0)) r();
  }

  // ---- manifests ----

  manifestPath(id: string): string {
    if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new Error(`bad checkpoint id '${id}'`);
    return join(this.manifestsDir, `${id}.json`);
  }

  list(vmId?: string): Manifest[] {
    const out: Manifest[] = [];
    for (const f of readdirSync(this.manifestsDir)) {
      if (!f.endsWith('.json')) continue;
      const m = JSON.parse(readFileSync(join(this.manifestsDir, f), 'utf8')) as Manifest;
      if (!vmId || m.vmId === vmId) out.push(m);
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  get(id: string): Manifest | undefined {
    const p = this.manifestPath(id);
    return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Manifest) : undefined;
  }

  /** Removes the manifest; its objects go at the next GC. */
  removeManifest(id: string): void {
    rmSync(this.manifestPath(id), { force: true });
  }

  /** Rewrites a manifest in place, atomically (used when a disk image is merged away). */
  rewriteManifest(m: Manifest): void {
    writeFileAtomic(this.manifestPath(m.id), JSON.stringify(m));
  }

  // ---- writing a checkpoint ----

  /** A sink for the stream parser that stores pages as they arrive; `finish` writes tables and the manifest.
   * With `parent` (the VM's previous checkpoint), a page whose hash equals the parent's page at the same place is
   * known to be stored: no index lookup for it. */
  async beginCheckpoint(opts: { parent?: Manifest; pool?: PagePool } = {}): Promise<CheckpointWriter> {
    await this.enterWriter();
    try {
      const parentTables = new Map<string, Buffer>();
      const parentTableSet = new Set<string>();
      for (const b of opts.parent?.stream.blocks ?? []) {
        parentTables.set(`${b.id}\0${b.length}`, this.blockTable(b));
        for (const t of b.tables) parentTableSet.add(t);
      }
      return new CheckpointWriter(this, this.objects.session(), parentTables, parentTableSet, opts.pool);
    } catch (e) {
      this.leaveWriter();
      throw e;
    }
  }

  // ---- reading ----

  /** Every page of the checkpoint, in block and page order, each checked against its hash while read. */
  *pages(m: Manifest): Generator<PageRecord> {
    for (const t of this.tablesOf(m)) {
      const data = this.objects.getMany(t.hashes);
      yield* t.records(data);
    }
  }

  /** `pages` a table (1,024 pages) at a time, each read at once and decoded on `pool`'s threads, the next table
   * read while the caller sends this one (an eager restore: ~9 µs a page to inflate and hash, here or there). */
  async *pageTables(m: Manifest, pool: PagePool): AsyncGenerator<PageRecord[]> {
    const tables = this.tablesOf(m);
    const read = (t: ReturnType<typeof tables.next>) =>
      t.done ? undefined : this.objects.getManyOn(pool, t.value.hashes).then((d) => [...t.value.records(d)]);
    let next = read(tables.next());
    while (next) {
      const now = next;
      next = undefined;
      now.catch(() => undefined); // awaited below, after the next table's read has started
      next = read(tables.next());
      next?.catch(() => undefined);
      yield await now;
    }
  }

  /** Each page table of m's RAM, in stream order: the hashes of its non-zero pages (to read), and its page records
   * once their contents are read (in that order). */
  private *tablesOf(m: Manifest): Generator<{ hashes: Buffer[]; records(data: Buffer[]): Generator<PageRecord> }> {
    for (let b = 0; b < m.stream.blocks.length; b++) {
      const blk = m.stream.blocks[b]!;
      const pageCount = blk.length / PAGE_SIZE;
      for (let t = 0; t < blk.tables.length; t++) {
        const table = this.objects.get(Buffer.from(blk.tables[t]!, 'hex'));
        const n = Math.min(PAGES_PER_TABLE, pageCount - t * PAGES_PER_TABLE);
        if (table.length !== n * HASH_BYTES)
          throw new Error(
            `page table ${t} of block '${blk.id}' has ${table.length / HASH_BYTES} entries, expected ${n}`,
          );
        const hashAt = (i: number) => table.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES);
        const hashes: Buffer[] = [];
        for (let i = 0; i < n; i++) if (!hashAt(i).equals(ZERO_HASH)) hashes.push(hashAt(i));
        yield {
          hashes,
          *records(data: Buffer[]) {
            let k = 0;
            for (let i = 0; i < n; i++)
              yield { block: b, index: t * PAGES_PER_TABLE + i, data: hashAt(i).equals(ZERO_HASH) ? null : data[k++]! };
          },
        };
      }
    }
  }

  /** A RAM block's page hashes in page order (its page tables joined; all-zero hashes for zero pages). */
  blockTable(blk: Manifest['stream']['blocks'][number]): Buffer {
    return Buffer.concat(blk.tables.map((t) => this.blob(t)));
  }

  blob(hex: string): Buffer {
    return this.objects.get(Buffer.from(hex, 'hex'));
  }

  /**
   * The stored bytes of the distinct objects these manifests name (tables, pages, blobs): what they hold, whatever
   * else the store holds. An owner's usage from it never depends on other owners' pages, and stays right when a
   * parent is deleted (its objects that a child still names count under the child). A table already counted is not
   * read again: its pages were counted with it.
   */
  storedBytesOf(ms: Manifest[]): number {
    const seen = new Set<string>();
    let n = 0;
    const add = (hex: string): boolean => {
      if (seen.has(hex)) return false;
      seen.add(hex);
      n += this.objects.storedLength(Buffer.from(hex, 'hex')) ?? 0;
      return true;
    };
    for (const m of ms) {
      add(m.stream.header);
      add(m.stream.deviceState);
      if (m.stream.vmdesc) add(m.stream.vmdesc);
      for (const blk of m.stream.blocks) {
        for (const t of blk.tables) {
          if (!add(t)) continue;
          const table = this.blob(t);
          for (let i = 0; i < table.length; i += HASH_BYTES) {
            const h = table.subarray(i, i + HASH_BYTES);
            if (!h.equals(ZERO_HASH)) add(h.toString('hex'));
          }
        }
      }
    }
    return n;
  }

  /** Every object a manifest names (tables, pages, blobs), as hex. */
  *references(m: Manifest): Generator<string> {
    yield m.stream.header;
    yield m.stream.deviceState;
    if (m.stream.vmdesc) yield m.stream.vmdesc;
    for (const blk of m.stream.blocks) {
      for (const t of blk.tables) {
        yield t;
        const table = this.objects.get(Buffer.from(t, 'hex'));
        for (let i = 0; i < table.length; i += HASH_BYTES) {
          const h = table.subarray(i, i + HASH_BYTES);
          if (!h.equals(ZERO_HASH)) yield h.toString('hex');
        }
      }
    }
  }

  /** `references` once each, as hashes (latin1 keys: a third of hex's cost at 130,000 pages). */
  private distinctReferences(m: Manifest): Buffer[] {
    const seen = new Map<string, Buffer>();
    const add = (h: Buffer) => {
      const k = h.toString('latin1');
      if (!seen.has(k)) seen.set(k, h);
    };
    for (const hex of [m.stream.header, m.stream.deviceState, m.stream.vmdesc]) if (hex) add(Buffer.from(hex, 'hex'));
    for (const blk of m.stream.blocks) {
      for (const t of blk.tables) {
        const th = Buffer.from(t, 'hex');
        add(th);
        const table = this.objects.get(th);
        for (let i = 0; i < table.length; i += HASH_BYTES) {
          const h = table.subarray(i, i + HASH_BYTES);
          if (!h.equals(ZERO_HASH)) add(h);
        }
      }
    }
    return [...seen.values()];
  }

  /** Reads and hashes every object the checkpoint names, in pack order and in batches (the restore's check before
   * it stops a VM); throws at the first missing or corrupt one. Returns how many objects were checked. */
  async checkAll(m: Manifest, threads = defaultPoolSize(), minForThreads = 2048, shared?: PagePool): Promise<number> {
    const hashes = this.distinctReferences(m); // reading the tables checks them
    // Decoding and hashing on threads (inflate + SHA-256: ~20 µs an object) when there is enough to share: `shared`'s
    // (the caller's, left open), else a pool of `threads` for this check.
    if ((!shared && threads < 2) || hashes.length < minForThreads) return this.objects.checkMany(hashes);
    const pool = shared ?? new PagePool(threads);
    try {
      return await this.objects.checkManyOn(pool, hashes);
    } finally {
      if (!shared) await pool.close();
    }
  }

  /** Reads every object and checks its hash; checks every manifest names only objects that are there and sound. */
  verify(ids?: string[]): Promise<VerifyReport> {
    return this.exclusive(() => this.checkObjects(ids));
  }

  /** verify's work, for a caller already running alone (inside exclusive). With `ids`, only the objects those
   * checkpoints name are read (each once), and only they are judged; without, every object of the store. */
  checkObjects(ids?: string[]): VerifyReport {
    const corrupt = new Set<string>();
    let objects = 0;
    const manifests = ids ? ids.map((id) => this.get(id)).filter((m): m is Manifest => !!m) : this.list();
    if (!ids) {
      for (const row of this.objects.all()) {
        objects++;
        try {
          this.objects.check(row);
        } catch {
          corrupt.add(row.hash.toString('hex'));
        }
      }
    }
    const seen = new Set<string>();
    const broken: Record<string, string[]> = {};
    for (const m of manifests) {
      const bad = new Set<string>();
      try {
        for (const h of this.references(m)) {
          if (ids && !seen.has(h)) {
            seen.add(h);
            objects++;
            try {
              this.blob(h); // read and hashed
            } catch {
              corrupt.add(h);
            }
          }
          if (corrupt.has(h) || !this.objects.has(Buffer.from(h, 'hex'))) bad.add(h);
        }
      } catch (e) {
        bad.add(`(${(e as Error).message})`);
      }
      if (bad.size) broken[m.id] = [...bad];
    }
    return { objects, corrupt: [...corrupt], broken, ok: corrupt.size === 0 && Object.keys(broken).length === 0 };
  }

  /** Deletes every object no manifest names. */
  gc(): Promise<{ deadObjects: number; packsRewritten: number; bytesFreed: number }> {
    return this.exclusive(() => {
      const live = new Set<string>();
      for (const m of this.list()) for (const h of this.references(m)) live.add(h);
      return this.objects.collect((h) => live.has(h.toString('hex')));
    });
  }
}

/** What the caller gives for a manifest: everything but what comes from the stream (and the machine type). */
export type ManifestMeta = Omit<Manifest, 'format' | 'stream' | 'stats' | 'qemu'> & {
  qemu: { version: string; machine?: string };
  stats: Omit<Manifest['stats'], 'pages' | 'zeroPages' | 'newObjects' | 'newBytes' | 'ownBytes' | 'streamBytes'>;
};

/** A stream whose objects are committed, waiting for its manifest. */
export interface SealedStream {
  machine: string;
  stream: Manifest['stream'];
  stats: Pick<Manifest['stats'], 'pages' | 'zeroPages' | 'newObjects' | 'newBytes' | 'ownBytes' | 'streamBytes'>;
}

/** Stores a stream's pages as the parser reports them and builds its page tables. */
export class CheckpointWriter implements StreamSink {
  private tables: Buffer[] = [];
  private blockList: RamBlock[] = [];
  private state: 'open' | 'sealed' | 'published' | 'aborted' = 'open';
  private sealed?: SealedStream;
  pages = 0;
  zeroPages = 0;

  private parentOf: (Buffer | undefined)[] = [];
  /** Pages found unchanged since the parent checkpoint (same hash at the same place). */
  unchangedPages = 0;

  constructor(
    private readonly store: CheckpointStore,
    readonly session: WriteSession,
    private readonly parentTables = new Map<string, Buffer>(),
    private readonly parentTableSet = new Set<string>(),
    pool?: PagePool,
  ) {
    if (pool) this.pipeline = new PagePipeline(pool, { session, placeAt: (b, i, h, o) => this.placeAt(b, i, h, o) });
  }
  /** With a thread pool: pages are hashed and compressed on its threads (pipeline.ts); `flushPages` before `seal`. */
  private readonly pipeline?: PagePipeline;
  /** The pipeline has enough in flight: stop reading the stream until `room()`. */
  get congested(): boolean {
    return this.pipeline?.congested ?? false;
  }
  room(): Promise<void> {
    return this.pipeline?.room() ?? Promise.resolve();
  }
  /** Waits until every page reported so far is stored (no-op without a pool). */
  async flushPages(): Promise<void> {
    await this.pipeline?.flush();
  }

  blocks(blocks: RamBlock[]): void {
    this.blockList = blocks;
    this.tables = blocks.map((b) => Buffer.alloc((b.length / PAGE_SIZE) * HASH_BYTES));
    this.parentOf = blocks.map((b) => this.parentTables.get(`${b.id}\0${b.length}`));
  }

  page(block: number, index: number, data: Buffer | null): void {
    if (this.pipeline) return this.pipeline.page(block, index, data);
    if (data === null) return void this.placeAt(block, index, null, 0);
    const h = sha256(data);
    if (this.placeAt(block, index, h.equals(ZERO_PAGE_SHA) ? null : h, 0)) this.session.put(h, data);
  }

  /** The parser's form of `page` for data pages read straight from a received chunk (no Buffer view per page). */
  pageAt(block: number, index: number, chunk: Buffer, offset: number): void {
    if (this.pipeline) return this.pipeline.pageAt(block, index, chunk, offset);
    this.page(block, index, chunk.subarray(offset, offset + PAGE_SIZE));
  }

  /** Puts a page's hash (the 32 bytes of `hashes` at `offset`; null: zero page) in its table; true if it must be
   * stored (not unchanged since the parent). */
  private placeAt(block: number, index: number, hashes: Buffer | null, offset: number): boolean {
    const t = this.tables[block]!;
    const at = index * HASH_BYTES;
    if (hashes === null) {
      t.fill(0, at, at + HASH_BYTES);
      return false;
    }
    hashes.copy(t, at, offset, offset + HASH_BYTES);
    const prev = this.parentOf[block];
    if (prev && prev.compare(t, at, at + HASH_BYTES, at, at + HASH_BYTES) === 0) {
      this.unchangedPages++;
      return false;
    }
    return true;
  }

  /**
   * Stores the tables and blobs, commits (fsync, index), then writes the manifest atomically. `meta` is everything
   * of the manifest but what comes from the stream.
   */
  finish(parsed: ParsedStream, meta: ManifestMeta): Manifest {
    this.seal(parsed);
    return this.publish(meta);
  }

  /**
   * First half of `finish`: stores the page tables and the stream's blobs and commits them (pack fsync, index
   * rows). Nothing is visible yet: no manifest names these objects, and GC keeps out until `publish` or `abort`.
   */
  seal(parsed: ParsedStream): SealedStream {
    if (this.state !== 'open') throw new Error(`checkpoint writer already ${this.state}`);
    if (this.pipeline?.busy) throw new Error('pages are still being stored: flushPages() before seal()');
    try {
      const blocks: ManifestBlock[] = this.blockList.map((b, i) => {
        const t = this.tables[i]!;
        const tables: string[] = [];
        const chunk = PAGES_PER_TABLE * HASH_BYTES;
        for (let o = 0; o < t.length; o += chunk) {
          const part = t.subarray(o, Math.min(o + chunk, t.length));
          for (let k = 0; k < part.length; k += HASH_BYTES) {
            if (part[k] === 0 && part.subarray(k, k + HASH_BYTES).equals(ZERO_HASH)) this.zeroPages++;
            else this.pages++;
          }
          // A table the parent names is stored (GC waits for this writer): shared, not this checkpoint's own.
          const h = sha256(part).toString('hex');
          if (!this.parentTableSet.has(h)) this.session.putBlob(Buffer.from(part));
          tables.push(h);
        }
        return { id: b.id, length: b.length, tables };
      });
      const header = this.session.putBlob(parsed.header).toString('hex');
      const deviceState = this.session.putBlob(parsed.deviceState).toString('hex');
      const vmdesc = parsed.vmdesc.length ? this.session.putBlob(parsed.vmdesc).toString('hex') : null;
      this.session.commit();
      this.state = 'sealed';
      this.sealed = {
        machine: parsed.machine,
        stream: { header, ramSectionId: parsed.ramSectionId, blocks, deviceState, vmdesc },
        stats: {
          streamBytes: parsed.stats.bytes, pages: this.pages, zeroPages: this.zeroPages,
          newObjects: this.session.stats.objects, newBytes: this.session.stats.storedBytes,
          ownBytes: this.session.stats.ownBytes,
        },
      };
      return this.sealed;
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  /** Second half of `finish`: writes the manifest (temp file, fsync, rename, fsync folder): the checkpoint exists. */
  publish(meta: ManifestMeta): Manifest {
    if (this.state !== 'sealed' || !this.sealed) throw new Error(`checkpoint writer is ${this.state}, not sealed`);
    this.state = 'published';
    try {
      const m: Manifest = {
        format: MANIFEST_FORMAT,
        ...meta,
        qemu: { ...meta.qemu, machine: this.sealed.machine },
        stream: this.sealed.stream,
        stats: { ...meta.stats, ...this.sealed.stats },
      };
      writeFileAtomic(this.store.manifestPath(m.id), JSON.stringify(m));
      return m;
    } finally {
      this.store.leaveWriter();
    }
  }

  /** Gives up: deletes what this checkpoint wrote (nothing of it was indexed), or, once sealed, leaves its objects
   * to the next GC (no manifest names them). */
  abort(): void {
    if (this.state === 'published' || this.state === 'aborted') return;
    this.pipeline?.cancel('the checkpoint was given up');
    if (this.state === 'open') this.session.abort();
    this.state = 'aborted';
    this.store.leaveWriter();
  }
}

/** One process at a time: a lock file with the owner's pid; a dead owner's lock is taken over. */
function takeLock(path: string): void {
  const pid = readPidfile(path);
  if (pid !== undefined && pid !== process.pid && isAlive(pid))
    throw new StoreLockedError(`the checkpoint store ${path.replace(/\/lock$/, '')} is in use by process ${pid}`);
  writeFileSync(path, `${process.pid}\n`, { mode: 0o600 });
}
