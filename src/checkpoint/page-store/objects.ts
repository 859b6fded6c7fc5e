// The content-addressed object store under a checkpoint root: RAM pages (4 KiB), page tables and stream blobs, each
// named by the SHA-256 of its content, deflated (zlib deflateRaw) or kept raw when deflating does not make it
// smaller, appended to pack files, found through an index (SQLite, better-sqlite3).
//
// Files:
//   packs/<n>.pack   "ORPK" be32 1, then records: hash[32] codec u8 rawLen be32 storedLen be32 data[storedLen]
//   index.db         objects(hash → pack, offset, rawLen, storedLen, codec); packs(n)
//
// Several processes may write (the server, capture workers): each session creates its pack exclusively (O_EXCL, the
// next free number on a clash), and index rows go in with SQLite's own locking (WAL, busy timeout).
//
// Crash safety: a write session appends to a pack of its own that no index row points to yet; `commit` fsyncs the
// pack (and its folder), then inserts the pack and its objects in one SQLite transaction (synchronous=FULL). A
// session that dies (crash, kill, full disk) leaves a pack the index does not know: `open` deletes such packs, and
// nothing any committed checkpoint uses was touched. Existing packs are only ever appended to by the session that
// created them; GC copies live objects into a new pack and commits before deleting the old one.
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync, constants as zc } from 'node:zlib';
import Database from 'better-sqlite3';
import {
  CODEC_DEFLATE, CODEC_RAW, HASH_BYTES, ObjectCorruptError, REC_HEADER, decodeStored, looksIncompressible, sha256,
} from './codec.ts';
import type { PagePool } from './page-pool.ts';

const PACK_MAGIC = Buffer.from('ORPK\0\0\0\x01', 'latin1');
/** A pack is closed and a new one started past this size. */
const PACK_LIMIT = 256 * 2 ** 20;

export { CODEC_DEFLATE, CODEC_RAW, HASH_BYTES, sha256, ObjectCorruptError, looksIncompressible, checkedRecords, type ParsedRecord } from './codec.ts';

export class ObjectMissingError extends Error {
  override name = 'ObjectMissingError';
}

interface Loc { pack: number; offset: number; raw: number; stored: number; codec: number }

/** storedBytes: what this session wrote (depends on what the shared store already held, other owners' pages
 * included). ownBytes: the on-disk size of every distinct object put in this session, written or found stored: a
 * function of the session's own content only (an object's stored form depends on its content alone). */
export interface WriteStats {
  objects: number; dedupHits: number; rawBytes: number; storedBytes: number; ownBytes: number;
}

/** Test hook: a write session fails (like a full disk) once it has written this many bytes. */
export interface FaultInjection { failAfterBytes?: number }

export class ObjectStore {
  readonly db: Database.Database;
  private readonly fds = new Map<number, number>();
  private readonly packsDir: string;

  constructor(readonly root: string, private readonly faults: FaultInjection = {}) {
    this.packsDir = join(root, 'packs');
    mkdirSync(this.packsDir, { recursive: true, mode: 0o700 });
    this.db = new Database(join(root, 'index.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 30000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS packs (n INTEGER PRIMARY KEY);
      CREATE TABLE IF NOT EXISTS objects (
        hash BLOB PRIMARY KEY, pack INTEGER NOT NULL, offset INTEGER NOT NULL,
        raw INTEGER NOT NULL, stored INTEGER NOT NULL, codec INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS objects_by_pack ON objects(pack);
    `);
  }

  /** Deletes packs no committed session owns (left by a session that crashed, was killed or ran out of disk). */
  recover(): string[] {
    const known = new Set((this.db.prepare('SELECT n FROM packs').all() as { n: number }[]).map((r) => r.n));
    const removed: string[] = [];
    for (const f of readdirSync(this.packsDir)) {
      const m = /^(\d+)\.pack$/.exec(f);
      if (!m || known.has(Number(m[1]))) continue;
      rmSync(join(this.packsDir, f), { force: true });
      removed.push(f);
    }
    return removed;
  }

  has(hash: Buffer): boolean {
    return this.hasStmt.get(hash) !== undefined;
  }
  private readonly hasStmt = this.prepare('SELECT 1 FROM objects WHERE hash = ?');
  private readonly locStmt = this.prepare('SELECT pack, offset, raw, stored, codec FROM objects WHERE hash = ?');
  private readonly storedStmt = this.prepare('SELECT stored FROM objects WHERE hash = ?');

  /** The stored lengths of those of `hashes` that are in the store, by hash (latin1): one query per 250. */
  storedLengths(hashes: Buffer[]): Map<string, number> {
    const out = new Map<string, number>();
    for (let at = 0; at < hashes.length; at += 250) {
      const part = hashes.slice(at, at + 250);
      let stmt = this.inStmts.get(part.length);
      if (!stmt) {
        stmt = this.db.prepare(`SELECT hash, stored FROM objects WHERE hash IN (${part.map(() => '?').join(',')})`);
        this.inStmts.set(part.length, stmt);
      }
      for (const r of stmt.all(...part) as { hash: Buffer; stored: number }[]) out.set(r.hash.toString('latin1'), r.stored);
    }
    return out;
  }
  private readonly inStmts = new Map<number, Database.Statement>();

  /** The stored length of an object (without its record header), if it is in the store. */
  storedLength(hash: Buffer): number | undefined {
    return (this.storedStmt.get(hash) as { stored: number } | undefined)?.stored;
  }

  private prepare(sql: string) {
    // Called from field initialisers, after the constructor body ran (class fields initialise in order, and db
    // is assigned in the constructor before these are used lazily).
    let stmt: Database.Statement | undefined;
    return {
      get: (...a: unknown[]) => (stmt ??= this.db.prepare(sql)).get(...a),
    };
  }

  /** The object's content, checked against its hash. */
  get(hash: Buffer): Buffer {
    const loc = this.locStmt.get(hash) as Loc | undefined;
    if (!loc) throw new ObjectMissingError(`object ${hash.toString('hex')} is not in the store`);
    return this.readAt(hash, loc);
  }

  private fd(pack: number): number {
    let fd = this.fds.get(pack);
    if (fd === undefined) {
      fd = openSync(this.packPath(pack), 'r');
      this.fds.set(pack, fd);
    }
    return fd;
  }

  packPath(n: number): string {
    return join(this.packsDir, `${String(n).padStart(8, '0')}.pack`);
  }

  private readAt(hash: Buffer, loc: Loc): Buffer {
    return this.readRecordAt(hash, loc).content;
  }

  private readRecordAt(hash: Buffer, loc: Loc): { record: Buffer; content: Buffer } {
    const buf = Buffer.allocUnsafe(REC_HEADER + loc.stored);
    const got = readSync(this.fd(loc.pack), buf, 0, buf.length, loc.offset);
    const what = `object ${hash.toString('hex').slice(0, 16)}… (pack ${loc.pack} offset ${loc.offset})`;
    if (got !== buf.length) throw new ObjectCorruptError(`${what}: pack is truncated`);
    if (!buf.subarray(0, HASH_BYTES).equals(hash))
      throw new ObjectCorruptError(`${what}: record header names another object`);
    return { record: buf, content: decodeStored(buf.subarray(REC_HEADER), { ...loc, hash }, what) };
  }

  /** The object's record as it is in its pack (header and stored bytes), checked against its hash: what an upload to
   * object storage copies (remote/). */
  record(hash: Buffer): Buffer {
    const loc = this.locStmt.get(hash) as Loc | undefined;
    if (!loc) throw new ObjectMissingError(`object ${hash.toString('hex')} is not in the store`);
    return this.readRecordAt(hash, loc).record;
  }

  /** Starts a write session on a new pack. */
  session(): WriteSession {
    return new WriteSession(this, this.nextPack(), this.faults);
  }

  private reserved = new Set<number>();
  /** A pack number no committed pack and no running session uses. */
  nextPack(): number {
    const max = (this.db.prepare('SELECT max(n) AS m FROM packs').get() as { m: number | null }).m ?? 0;
    let n = max + 1;
    while (this.reserved.has(n) || existsSync(this.packPath(n))) n++;
    this.reserved.add(n);
    return n;
  }
  release(n: number): void {
    this.reserved.delete(n);
  }

  /** Every object, for verify and GC: hash → location. */
  *all(): Generator<{ hash: Buffer } & Loc> {
    for (const r of this.db
      .prepare('SELECT hash, pack, offset, raw, stored, codec FROM objects ORDER BY pack, offset')
      .iterate()) {
      yield r as { hash: Buffer } & Loc;
    }
  }

  /**
   * Reads every object of `hashes` and checks it against its hash, in pack order: locations looked up 250 at a time,
   * records next to each other (gaps ≤ 64 KiB) read in one call of up to 4 MiB. Throws ObjectMissingError or
   * ObjectCorruptError at the first object that is not there or not sound. The restore's check.
   */
  checkMany(hashes: Iterable<Buffer>): number {
    const locs = this.sortedLocs([...hashes]);
    for (let i = 0; i < locs.length; ) {
      const first = locs[i]!;
      let end = first.offset + REC_HEADER + first.stored;
      let j = i + 1;
      for (; j < locs.length; j++) {
        const l = locs[j]!;
        const e = l.offset + REC_HEADER + l.stored;
        if (l.pack !== first.pack || l.offset - end > 65536 || e - first.offset > 4 * 2 ** 20) break;
        end = e;
      }
      const span = Buffer.allocUnsafe(end - first.offset);
      const got = readSync(this.fd(first.pack), span, 0, span.length, first.offset);
      for (; i < j; i++) {
        const l = locs[i]!;
        const what = describe(l);
        const o = l.offset - first.offset;
        if (o + REC_HEADER + l.stored > got) throw new ObjectCorruptError(`${what}: pack is truncated`);
        if (!span.subarray(o, o + HASH_BYTES).equals(l.hash))
          throw new ObjectCorruptError(`${what}: record header names another object`);
        decodeStored(span.subarray(o + REC_HEADER, o + REC_HEADER + l.stored), l, what);
      }
    }
    return locs.length;
  }

  /** `checkMany` with the decoding and hashing on a thread pool, spans of ≤ 1 MiB read here while threads check the
   * previous ones. */
  async checkManyOn(pool: PagePool, hashes: Iterable<Buffer>): Promise<number> {
    const locs = this.sortedLocs([...hashes]);
    const inFlight: Promise<void>[] = [];
    for (let i = 0; i < locs.length; ) {
      const first = locs[i]!;
      let end = first.offset;
      let j = i;
      for (; j < locs.length; j++) {
        const l = locs[j]!;
        const e = l.offset + REC_HEADER + l.stored;
        if (j > i && (l.pack !== first.pack || l.offset - end > 65536 || e - first.offset > 2 ** 20)) break;
        end = e;
      }
      const span = new ArrayBuffer(end - first.offset);
      const got = readSync(this.fd(first.pack), new Uint8Array(span), 0, span.byteLength, first.offset);
      const part = locs.slice(i, j);
      const recs = new Float64Array(part.length * 4);
      const hs = new Uint8Array(part.length * HASH_BYTES);
      part.forEach((l, k) => {
        recs.set([l.offset - first.offset, l.stored, l.raw, l.codec], k * 4);
        hs.set(l.hash, k * HASH_BYTES);
        if (l.offset - first.offset + REC_HEADER + l.stored > got)
          throw new ObjectCorruptError(`${describe(l)}: pack is truncated`);
      });
      const checked = pool.verify(span, recs, hs).then((bad) => {
        if (bad) throw new ObjectCorruptError(`${describe(part[bad.k]!)}: ${bad.why}`);
      });
      checked.catch(() => undefined); // awaited below, maybe after it failed
      inFlight.push(checked);
      if (inFlight.length >= 2 * pool.size) await inFlight.shift();
      i = j;
    }
    await Promise.all(inFlight);
    return locs.length;
  }

  private sortedLocs(want: Buffer[]): ({ hash: Buffer } & Loc)[] {
    const locs: ({ hash: Buffer } & Loc)[] = [];
    for (let at = 0; at < want.length; at += 250) {
      const part = want.slice(at, at + 250);
      const rows = this.locsOf(part);
      if (rows.length !== part.length) {
        const got = new Set(rows.map((r) => r.hash.toString('hex')));
        const miss = part.find((h) => !got.has(h.toString('hex')))!;
        throw new ObjectMissingError(`object ${miss.toString('hex')} is not in the store`);
      }
      locs.push(...rows);
    }
    return locs.sort((a, b) => a.pack - b.pack || a.offset - b.offset);
  }

  private locsOf(hashes: Buffer[]): ({ hash: Buffer } & Loc)[] {
    let stmt = this.locStmts.get(hashes.length);
    if (!stmt) {
      const q = hashes.map(() => '?').join(',');
      stmt = this.db.prepare(`SELECT hash, pack, offset, raw, stored, codec FROM objects WHERE hash IN (${q})`);
      this.locStmts.set(hashes.length, stmt);
    }
    return stmt.all(...hashes) as ({ hash: Buffer } & Loc)[];
  }
  private readonly locStmts = new Map<number, Database.Statement>();

  /** Reads and checks one object by its row (verify). */
  check(row: { hash: Buffer } & Loc): void {
    this.readAt(row.hash, row);
  }

  /**
   * Removes every object not in `live`: packs holding dead objects are rewritten (their live objects copied to a
   * new pack, committed, then the old pack deleted). Returns what was freed.
   */
  collect(live: (hash: Buffer) => boolean): { deadObjects: number; packsRewritten: number; bytesFreed: number } {
    const byPack = new Map<number, { live: ({ hash: Buffer } & Loc)[]; dead: number; deadBytes: number }>();
    for (const r of this.all()) {
      let e = byPack.get(r.pack);
      if (!e) byPack.set(r.pack, (e = { live: [], dead: 0, deadBytes: 0 }));
      if (live(r.hash)) e.live.push(r);
      else {
        e.dead++;
        e.deadBytes += REC_HEADER + r.stored;
      }
    }
    let deadObjects = 0, packsRewritten = 0, bytesFreed = 0;
    const emptyPacks = (
      this.db.prepare('SELECT n FROM packs WHERE n NOT IN (SELECT DISTINCT pack FROM objects)').all() as { n: number }[]
    ).map((r) => r.n);
    for (const [pack, e] of byPack) {
      if (e.dead === 0) continue;
      let session: WriteSession | undefined;
      if (e.live.length > 0) {
        session = this.session();
        for (const r of e.live) session.putStored(r.hash, this.readStored(r), r);
      }
      this.db.transaction(() => {
        this.db.prepare('DELETE FROM objects WHERE pack = ?').run(pack);
        this.db.prepare('DELETE FROM packs WHERE n = ?').run(pack);
        session?.commitRows();
      })();
      this.closeFd(pack);
      rmSync(this.packPath(pack), { force: true });
      deadObjects += e.dead;
      bytesFreed += e.deadBytes;
      packsRewritten++;
    }
    for (const pack of emptyPacks) {
      this.db.prepare('DELETE FROM packs WHERE n = ?').run(pack);
      this.closeFd(pack);
      rmSync(this.packPath(pack), { force: true });
    }
    return { deadObjects, packsRewritten, bytesFreed };
  }

  private readStored(loc: Loc & { hash: Buffer }): Buffer {
    const buf = Buffer.allocUnsafe(loc.stored);
    readSync(this.fd(loc.pack), buf, 0, loc.stored, loc.offset + REC_HEADER);
    return buf;
  }

  private closeFd(pack: number): void {
    const fd = this.fds.get(pack);
    if (fd !== undefined) closeSync(fd);
    this.fds.delete(pack);
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
    this.db.close();
  }
}

/**
 * Appends new objects to one pack (rolling to another past 256 MiB). Nothing is visible to readers or to other
 * sessions' dedup until `commit`; `abort` deletes what was written.
 */
export class WriteSession {
  private fd: number;
  private offset = 0;
  private bytes = 0;
  private readonly buf = Buffer.allocUnsafe(2 ** 20);
  private buffered = 0;
  private readonly packs: number[] = [];
  private readonly pending = new Map<string, { hash: Buffer } & Loc>();
  readonly stats: WriteStats = { objects: 0, dedupHits: 0, rawBytes: 0, storedBytes: 0, ownBytes: 0 };
  /** Objects found already stored that ownBytes has counted (those written here are counted when written). */
  private readonly ownSeen = new Set<string>();
  private done = false;

  constructor(private readonly store: ObjectStore, private pack: number, private readonly faults: FaultInjection) {
    this.fd = this.openPack(pack);
  }

  private openPack(n: number): number {
    let fd: number;
    for (;;) {
      try {
        fd = openSync(this.store.packPath(n), 'wx', 0o600);
        break;
      } catch (e) {
        // Another process (a capture worker, or the server) took this number between our look and our create.
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        this.store.release(n);
        n = this.store.nextPack();
      }
    }
    this.pack = n;
    this.packs.push(n);
    this.offset = 0;
    this.buffered = 0;
    this.write(fd, PACK_MAGIC);
    return fd;
  }

  /** Appends to the pack through a 1 MiB buffer (one write call per MiB, not two per object). */
  private write(fd: number, b: Buffer): void {
    if (this.faults.failAfterBytes !== undefined && this.bytes + b.length > this.faults.failAfterBytes) {
      throw Object.assign(new Error('ENOSPC: no space left on device (injected)'), { code: 'ENOSPC' });
    }
    if (this.buffered + b.length > this.buf.length) this.drain(fd);
    if (b.length >= this.buf.length) {
      writeAll(fd, b, this.offset);
    } else {
      b.copy(this.buf, this.buffered);
      this.buffered += b.length;
    }
    this.offset += b.length;
    this.bytes += b.length;
  }

  /** Writes what the buffer holds (it ends at `offset`). */
  private drain(fd: number): void {
    if (this.buffered === 0) return;
    writeAll(fd, this.buf.subarray(0, this.buffered), this.offset - this.buffered);
    this.buffered = 0;
  }

  /** True if the object is stored or pending in this session. */
  has(hash: Buffer): boolean {
    return this.pending.has(hash.toString('latin1')) || this.store.has(hash);
  }

  /** Objects a pipelined capture found new and will write (putStored) once compressed. */
  private readonly claimed = new Set<string>();
  /**
   * The pipelined form of `put`'s lookup, for a batch of hashes: true for each one neither stored, pending nor claimed
   * by an earlier call (nor earlier in this one), which is then claimed: the caller must `putStored` it. Dedup hits
   * and ownBytes are counted as `put` counts them.
   */
  claimNew(hashes: Buffer[]): boolean[] {
    const out = new Array<boolean>(hashes.length).fill(false);
    const keys = hashes.map((h) => h.toString('latin1'));
    const ask: Buffer[] = [];
    for (let i = 0; i < keys.length; i++)
      if (!this.pending.has(keys[i]!) && !this.claimed.has(keys[i]!)) ask.push(hashes[i]!);
    const have = ask.length ? this.store.storedLengths(ask) : new Map<string, number>();
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (this.pending.has(key) || this.claimed.has(key)) {
        this.stats.dedupHits++;
        continue;
      }
      const st = have.get(key);
      if (st === undefined) {
        this.claimed.add(key);
        out[i] = true;
        continue;
      }
      this.stats.dedupHits++;
      if (!this.ownSeen.has(key)) {
        this.ownSeen.add(key);
        this.stats.ownBytes += REC_HEADER + st;
      }
    }
    return out;
  }

  /** Stores `data` under `hash` (its SHA-256, computed by the caller) unless it is there already. */
  put(hash: Buffer, data: Buffer): boolean {
    const key = hash.toString('latin1');
    if (this.pending.has(key)) {
      this.stats.dedupHits++;
      return false;
    }
    const have = this.store.storedLength(hash);
    if (have !== undefined) {
      this.stats.dedupHits++;
      if (!this.ownSeen.has(key)) {
        this.ownSeen.add(key);
        this.stats.ownBytes += REC_HEADER + have;
      }
      return false;
    }
    // Deflating a page of random-looking bytes costs ~100 µs and gains nothing: such pages are stored raw.
    const z = looksIncompressible(data) ? data : deflateRawSync(data, { level: 1, strategy: zc.Z_DEFAULT_STRATEGY });
    const [codec, stored] = z.length < data.length ? [CODEC_DEFLATE, z] : [CODEC_RAW, data];
    this.putStored(hash, stored, { raw: data.length, codec });
    return true;
  }

  /** Stores `data` under its own hash; returns the hash. */
  putBlob(data: Buffer): Buffer {
    const h = sha256(data);
    this.put(h, data);
    return h;
  }

  putStored(hash: Buffer, stored: Buffer, meta: { raw: number; codec: number }): void {
    if (this.done) throw new Error('write session already finished');
    if (this.offset + REC_HEADER + stored.length > PACK_LIMIT && this.offset > PACK_MAGIC.length) {
      this.drain(this.fd);
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = this.openPack(this.store.nextPack());
    }
    const h = Buffer.alloc(REC_HEADER);
    hash.copy(h, 0);
    h[HASH_BYTES] = meta.codec;
    h.writeUInt32BE(meta.raw, HASH_BYTES + 1);
    h.writeUInt32BE(stored.length, HASH_BYTES + 5);
    const at = this.offset;
    this.write(this.fd, h);
    this.write(this.fd, stored);
    this.claimed.delete(hash.toString('latin1'));
    this.pending.set(hash.toString('latin1'), {
      hash,
      pack: this.pack,
      offset: at,
      raw: meta.raw,
      stored: stored.length,
      codec: meta.codec,
    });
    this.stats.objects++;
    this.stats.rawBytes += meta.raw;
    this.stats.storedBytes += REC_HEADER + stored.length;
    this.stats.ownBytes += REC_HEADER + stored.length;
  }

  /** Makes the objects durable and visible: fsync the packs and their folder, then index them in one transaction. */
  commit(): void {
    this.flush();
    this.store.db.transaction(() => this.commitRows())();
  }

  /** fsync only; `commitRows` inside the caller's transaction (GC). */
  private flush(): void {
    this.drain(this.fd);
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
    const dir = openSync(join(this.store.root, 'packs'), 'r');
    try { fsyncSync(dir); } finally { closeSync(dir); }
  }

  commitRows(): void {
    if (this.fd !== -1) this.flush();
    const addPack = this.store.db.prepare('INSERT OR IGNORE INTO packs (n) VALUES (?)');
    const addObj = this.store.db.prepare(
      'INSERT OR IGNORE INTO objects (hash, pack, offset, raw, stored, codec) VALUES (?, ?, ?, ?, ?, ?)',
    );
    for (const n of this.packs) addPack.run(n);
    for (const o of this.pending.values()) addObj.run(o.hash, o.pack, o.offset, o.raw, o.stored, o.codec);
    this.done = true;
    for (const n of this.packs) this.store.release(n);
  }

  /** Drops everything this session wrote (nothing of it was indexed). */
  abort(): void {
    if (this.done) return;
    this.done = true;
    if (this.fd !== -1) try { closeSync(this.fd); } catch { /* already closed */ }
    for (const n of this.packs) {
      rmSync(this.store.packPath(n), { force: true });
      this.store.release(n);
    }
  }
}

const describe = (l: { hash: Buffer } & Loc): string =>
  `object ${l.hash.toString('hex').slice(0, 16)}… (pack ${l.pack} offset ${l.offset})`;

function writeAll(fd: number, b: Buffer, position: number): void {
  let at = 0;
  while (at < b.length) at += writeSync(fd, b, at, b.length - at, position + at);
}

