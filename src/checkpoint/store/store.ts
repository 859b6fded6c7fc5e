// The checkpoint store: one folder (default <dataDir>/checkpoints) shared by every VM, so identical pages of
// different VMs and checkpoints are stored once.
//   index.db, packs/   content-addressed objects (objects.ts)
//   manifests/<id>.json one per checkpoint, written last, atomically (manifest.ts)
//   disks/<vmId>/      the checkpoints' disk images (incremental qcow2 chain; disk.ts)
//   lock               pid of the process that has the store open
// Writers share the store, GC and verify have it alone (a readers-writer lock where checkpoint writers are the
// "readers"): GC never runs while a checkpoint is being written, so it can never delete an object a half-written
// checkpoint relies on (written, or found already stored and not written again).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PageRecord, ParsedStream, RamBlock, StreamSink } from '../stream/index.ts';
import { PAGE_SIZE } from '../stream/index.ts';
import { HASH_BYTES, ObjectStore, sha256, type FaultInjection, type WriteSession } from './objects.ts';
import { MANIFEST_FORMAT, PAGES_PER_TABLE, writeFileAtomic, type Manifest, type ManifestBlock } from './manifest.ts';

const ZERO_HASH = Buffer.alloc(HASH_BYTES);
const ZERO_PAGE_SHA = sha256(Buffer.alloc(PAGE_SIZE));

export class StoreLockedError extends Error {
  override name = 'StoreLockedError';
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

  constructor(readonly root: string, opts: { faults?: FaultInjection } = {}) {
    mkdirSync(root, { recursive: true, mode: 0o700 });
    this.manifestsDir = join(root, 'manifests');
    mkdirSync(this.manifestsDir, { recursive: true, mode: 0o700 });
    mkdirSync(join(root, 'disks'), { recursive: true, mode: 0o700 });
    takeLock(join(root, 'lock'));
    this.objects = new ObjectStore(root, opts.faults);
    this.objects.recover();
    for (const f of readdirSync(this.manifestsDir)) if (f.includes('.tmp-')) rmSync(join(this.manifestsDir, f), { force: true });
  }

  close(): void {
    this.objects.close();
    rmSync(join(this.root, 'lock'), { force: true });
  }

  /** Runs `fn` alone: after every checkpoint being written has finished, and none starts meanwhile. */
  exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.exclusiveTail.then(async () => {
      this.exclusiveRunning = true;
      try {
        while (this.writers > 0) await new Promise<void>((r) => this.writersIdle.push(r));
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

  /** A sink for the stream parser that stores pages as they arrive; `finish` writes tables and the manifest. */
  async beginCheckpoint(): Promise<CheckpointWriter> {
    await this.enterWriter();
    try {
      return new CheckpointWriter(this, this.objects.session());
    } catch (e) {
      this.leaveWriter();
      throw e;
    }
  }

  // ---- reading ----

  /** Every page of the checkpoint, in block and page order, each checked against its hash while read. */
  *pages(m: Manifest): Generator<PageRecord> {
    for (let b = 0; b < m.stream.blocks.length; b++) {
      const blk = m.stream.blocks[b]!;
      const pageCount = blk.length / PAGE_SIZE;
      for (let t = 0; t < blk.tables.length; t++) {
        const table = this.objects.get(Buffer.from(blk.tables[t]!, 'hex'));
        const n = Math.min(PAGES_PER_TABLE, pageCount - t * PAGES_PER_TABLE);
        if (table.length !== n * HASH_BYTES) throw new Error(`page table ${t} of block '${blk.id}' has ${table.length / HASH_BYTES} entries, expected ${n}`);
        for (let i = 0; i < n; i++) {
          const h = table.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES);
          yield { block: b, index: t * PAGES_PER_TABLE + i, data: h.equals(ZERO_HASH) ? null : this.objects.get(h) };
        }
      }
    }
  }

  blob(hex: string): Buffer {
    return this.objects.get(Buffer.from(hex, 'hex'));
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

  /** Reads every object and checks its hash; checks every manifest names only objects that are there and sound. */
  verify(): Promise<VerifyReport> {
    return this.exclusive(() => {
      const corrupt = new Set<string>();
      let objects = 0;
      for (const row of this.objects.all()) {
        objects++;
        try {
          this.objects.check(row);
        } catch {
          corrupt.add(row.hash.toString('hex'));
        }
      }
      const broken: Record<string, string[]> = {};
      for (const m of this.list()) {
        const bad = new Set<string>();
        try {
          for (const h of this.references(m)) {
            if (corrupt.has(h) || !this.objects.has(Buffer.from(h, 'hex'))) bad.add(h);
          }
        } catch (e) {
          bad.add(`(${(e as Error).message})`);
        }
        if (bad.size) broken[m.id] = [...bad];
      }
      return { objects, corrupt: [...corrupt], broken, ok: corrupt.size === 0 && Object.keys(broken).length === 0 };
    });
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

/** Stores a stream's pages as the parser reports them and builds its page tables. */
export class CheckpointWriter implements StreamSink {
  private tables: Buffer[] = [];
  private blockList: RamBlock[] = [];
  private finished = false;
  pages = 0;
  zeroPages = 0;

  constructor(private readonly store: CheckpointStore, readonly session: WriteSession) {}

  blocks(blocks: RamBlock[]): void {
    this.blockList = blocks;
    this.tables = blocks.map((b) => Buffer.alloc((b.length / PAGE_SIZE) * HASH_BYTES));
  }

  page(block: number, index: number, data: Buffer | null): void {
    const t = this.tables[block]!;
    if (data === null) {
      t.fill(0, index * HASH_BYTES, (index + 1) * HASH_BYTES);
      return;
    }
    const h = sha256(data);
    if (h.equals(ZERO_PAGE_SHA)) {
      t.fill(0, index * HASH_BYTES, (index + 1) * HASH_BYTES);
      return;
    }
    h.copy(t, index * HASH_BYTES);
    this.session.put(h, data);
  }

  /**
   * Stores the tables and blobs, commits (fsync, index), then writes the manifest atomically. `meta` is everything
   * of the manifest but what comes from the stream.
   */
  finish(parsed: ParsedStream, meta: Omit<Manifest, 'format' | 'stream' | 'stats'> & { stats: Omit<Manifest['stats'], 'pages' | 'zeroPages' | 'newObjects' | 'newBytes' | 'streamBytes'> }): Manifest {
    if (this.finished) throw new Error('checkpoint writer already finished');
    this.finished = true;
    {
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
            tables.push(this.session.putBlob(Buffer.from(part)).toString('hex'));
          }
          return { id: b.id, length: b.length, tables };
        });
        const header = this.session.putBlob(parsed.header).toString('hex');
        const deviceState = this.session.putBlob(parsed.deviceState).toString('hex');
        const vmdesc = parsed.vmdesc.length ? this.session.putBlob(parsed.vmdesc).toString('hex') : null;
        this.session.commit();
        const m: Manifest = {
          format: MANIFEST_FORMAT,
          ...meta,
          stream: { header, ramSectionId: parsed.ramSectionId, blocks, deviceState, vmdesc },
          stats: {
            ...meta.stats,
            streamBytes: parsed.stats.bytes,
            pages: this.pages,
            zeroPages: this.zeroPages,
            newObjects: this.session.stats.objects,
            newBytes: this.session.stats.storedBytes,
          },
        };
        writeFileAtomic(this.store.manifestPath(m.id), JSON.stringify(m));
        return m;
      } catch (e) {
        this.session.abort();
        throw e;
      } finally {
        this.store.leaveWriter();
      }
    }
  }

  /** Gives up: deletes what this checkpoint wrote (nothing of it was indexed). */
  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.session.abort();
    this.store.leaveWriter();
  }
}

/** One process at a time: a lock file with the owner's pid; a dead owner's lock is taken over. */
function takeLock(path: string): void {
  if (existsSync(path)) {
    const pid = Number(readFileSync(path, 'utf8').trim());
    if (pid && pid !== process.pid) {
      let alive = true;
      try { process.kill(pid, 0); } catch (e) { alive = (e as NodeJS.ErrnoException).code === 'EPERM'; }
      if (alive) throw new StoreLockedError(`the checkpoint store ${path.replace(/\/lock$/, '')} is in use by process ${pid}`);
    }
  }
  writeFileSync(path, `${process.pid}\n`, { mode: 0o600 });
}
