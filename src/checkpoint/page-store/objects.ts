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
// Crash safety: a write session (write-session.ts) appends to a pack of its own that no index row points to yet;
// `commit` fsyncs the pack (and its folder), then inserts the pack and its objects in one SQLite transaction
// (synchronous=FULL). A session that dies (crash, kill, full disk) leaves a pack the index does not know: `open`
// deletes such packs, and nothing any committed checkpoint uses was touched. Existing packs are only ever appended to
// by the session that created them; GC copies live objects into a new pack and commits before deleting the old one.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { HASH_BYTES, ObjectCorruptError, REC_HEADER, decodeStored } from './codec.ts';
import type { PagePool } from './page-pool.ts';
import { WriteSession } from './write-session.ts';

export { CODEC_DEFLATE, CODEC_RAW, HASH_BYTES, sha256, ObjectCorruptError, looksIncompressible, checkedRecords, type ParsedRecord } from './codec.ts';

export { WriteSession } from './write-session.ts';

export class ObjectMissingError extends Error {
  override name = 'ObjectMissingError';
}

/** Locations kept at most (~250-300 bytes each with their row objects: ≤ ~150 MB, a 2 GiB guest's pages): a bigger
 * restore looks the rest up again. */
const MAX_KEPT_LOCATIONS = 2 ** 19;

/** Where an object is, and how it is stored. */
export interface Loc { pack: number; offset: number; raw: number; stored: number; codec: number }

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
    for (const { span, start, part } of this.spans(locs)) {
      for (const l of part) this.decodeIn(span, start, l);
    }
    return locs.length;
  }

  /** The contents of `hashes` (in their order; a hash may repeat), each checked against its hash: `get` for many at
   * once, with one index query per 250 and one read per run of neighbouring records (a lazy restore's huge page:
   * 512 pages, mostly stored side by side). */
  getMany(hashes: Buffer[]): Buffer[] {
    const unique = [...new Map(hashes.map((h) => [h.toString('latin1'), h])).values()];
    const got = new Map<string, Buffer>();
    for (const { span, start, part } of this.spans(this.sortedLocs(unique))) {
      for (const l of part) got.set(l.hash.toString('latin1'), this.decodeIn(span, start, l));
    }
    return hashes.map((h) => got.get(h.toString('latin1'))!);
  }

  /** `getMany` with the decoding and hashing on `pool`'s threads: the records split in one part per thread (in pack
   * order), each part's runs read here. */
  async getManyOn(pool: PagePool, hashes: Buffer[]): Promise<Buffer[]> {
    const unique = [...new Map(hashes.map((h) => [h.toString('latin1'), h])).values()];
    const locs = this.sortedLocs(unique);
    const got = new Map<string, Buffer>();
    const parts: Promise<void>[] = [];
    try {
      this.decodeOn(pool, locs, got, parts);
    } catch (e) {
      for (const q of parts) q.catch(() => undefined); // failing already: theirs are not waited for
      throw e;
    }
    await Promise.all(parts);
    return hashes.map((h) => got.get(h.toString('latin1'))!);
  }

  /** getManyOn's reads: each part's runs of records, posted to the pool (promises to `parts`, contents to `got`). */
  private decodeOn(
    pool: PagePool, locs: ({ hash: Buffer } & Loc)[], got: Map<string, Buffer>, parts: Promise<void>[],
  ): void {
    const per = Math.ceil(locs.length / pool.size);
    for (let p = 0; p < locs.length; p += per) {
      for (const { span, start, part } of this.spans(locs.slice(p, p + per))) {
        const { recs, hashes: hs, rawBytes } = this.recordsIn(span, start, part);
        parts.push(pool.decode(ownMemory(span), recs, hs, rawBytes).then((out) => {
          let at = 0;
          for (const l of part) got.set(l.hash.toString('latin1'), out.subarray(at, (at += l.raw)));
        }, (e: Error & { record?: number }) => {
          throw e.record === undefined ? e : new ObjectCorruptError(`${describe(part[e.record]!)}: ${e.message}`);
        }));
      }
    }
  }

  /** Runs of `locs` (sorted) that lie side by side in a pack (gaps ≤ 64 KiB, ≤ `maxBytes` in all), each read at once:
   * `span` starts at the run's first record. */
  private *spans(
    locs: ({ hash: Buffer } & Loc)[], maxBytes = 4 * 2 ** 20,
  ): Generator<{ span: Buffer; start: number; part: typeof locs }> {
    for (let i = 0; i < locs.length; ) {
      const first = locs[i]!;
      let end = first.offset + REC_HEADER + first.stored;
      let j = i + 1;
      for (; j < locs.length; j++) {
        const l = locs[j]!;
        const e = l.offset + REC_HEADER + l.stored;
        if (l.pack !== first.pack || l.offset - end > 65536 || e - first.offset > maxBytes) break;
        end = Math.max(end, e);
      }
      const span = Buffer.from(new ArrayBuffer(end - first.offset)); // its own memory: getManyOn moves it
      const got = readSync(this.fd(first.pack), span, 0, span.length, first.offset);
      yield { span: span.subarray(0, got), start: first.offset, part: locs.slice(i, j) };
      i = j;
    }
  }

  /** Object `l`'s content, from `span`: the bytes of its pack from offset `start` on. Checked against its hash. */
  private decodeIn(span: Buffer, start: number, l: { hash: Buffer } & Loc): Buffer {
    const what = describe(l);
    const o = l.offset - start;
    if (o + REC_HEADER + l.stored > span.length) throw new ObjectCorruptError(`${what}: pack is truncated`);
    if (!span.subarray(o, o + HASH_BYTES).equals(l.hash))
      throw new ObjectCorruptError(`${what}: record header names another object`);
    return decodeStored(span.subarray(o + REC_HEADER, o + REC_HEADER + l.stored), l, what);
  }

  /** `checkMany` with the decoding and hashing on a thread pool, spans of ≤ 1 MiB read here while threads check the
   * previous ones. */
  async checkManyOn(pool: PagePool, hashes: Iterable<Buffer>): Promise<number> {
    const all = [...hashes];
    const inFlight: Promise<void>[] = [];
    // A chunk at a time: the index queries of the next chunk (~2.5 µs an object) run while the threads check this one.
    for (let c = 0; c < all.length; c += CHECK_CHUNK) {
      for (const { span, start, part } of this.spans(this.sortedLocs(all.slice(c, c + CHECK_CHUNK)), 2 ** 20)) {
        const { recs, hashes: hs } = this.recordsIn(span, start, part);
        const checked = pool.verify(ownMemory(span), recs, hs).then((bad) => {
          if (bad) throw new ObjectCorruptError(`${describe(part[bad.k]!)}: ${bad.why}`);
        });
        checked.catch(() => undefined); // awaited below, maybe after it failed
        inFlight.push(checked);
        if (inFlight.length >= 4 * pool.size) await inFlight.shift();
      }
    }
    await Promise.all(inFlight);
    return all.length;
  }

  /** What a thread needs to check or decode the records `part` in `span` (their pack's bytes from `start` on): per
   * record its offset in the span, stored length, raw length and codec, and its hash. Throws if the span is short. */
  private recordsIn(span: Buffer, start: number, part: ({ hash: Buffer } & Loc)[]) {
    const recs = new Float64Array(part.length * 4);
    const hashes = new Uint8Array(part.length * HASH_BYTES);
    let rawBytes = 0;
    part.forEach((l, k) => {
      recs.set([l.offset - start, l.stored, l.raw, l.codec], k * 4);
      hashes.set(l.hash, k * HASH_BYTES);
      rawBytes += l.raw;
      if (l.offset - start + REC_HEADER + l.stored > span.length)
        throw new ObjectCorruptError(`${describe(l)}: pack is truncated`);
    });
    return { recs, hashes, rawBytes };
  }

  /** Locations looked up while someone keeps them (`keepLocations`), by hash (latin1). */
  private known: Map<string, { hash: Buffer } & Loc> | undefined;
  private keepers = 0;

  /** Keeps every location looked up from now until the returned function is called (by every caller that asked):
   * a lazy restore looks each of its pages up once, in its check, not again as QEMU asks for them (~3 µs a page in
   * SQLite: 1.4 ms of each 2 MiB huge page). Only while packs are not rewritten (CheckpointStore.holdWriter). */
  keepLocations(): () => void {
    this.keepers++;
    this.known ??= new Map();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.keepers === 0) this.known = undefined;
    };
  }

  private sortedLocs(wanted: Buffer[]): ({ hash: Buffer } & Loc)[] {
    const locs: ({ hash: Buffer } & Loc)[] = [];
    const known = this.known;
    let want = wanted;
    if (known) {
      want = [];
      for (const h of wanted) {
        const l = known.get(h.toString('latin1'));
        if (l) locs.push(l);
        else want.push(h);
      }
    }
    for (const r of this.lookUp(want)) {
      locs.push(r);
      if (known && known.size < MAX_KEPT_LOCATIONS) known.set(r.hash.toString('latin1'), r);
    }
    return locs.sort((a, b) => a.pack - b.pack || a.offset - b.offset);
  }

  /** The rows of `want` (distinct hashes), one query per 250; ObjectMissingError names one that is not there. */
  private lookUp(want: Buffer[]): ({ hash: Buffer } & Loc)[] {
    const out: ({ hash: Buffer } & Loc)[] = [];
    for (let at = 0; at < want.length; at += 250) {
      const part = want.slice(at, at + 250);
      const rows = this.locsOf(part);
      if (rows.length !== part.length) {
        const got = new Set(rows.map((r) => r.hash.toString('hex')));
        const miss = part.find((h) => !got.has(h.toString('hex')))!;
        throw new ObjectMissingError(`object ${miss.toString('hex')} is not in the store`);
      }
      for (const r of rows) out.push(r);
    }
    return out;
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

/** `span`'s bytes as an ArrayBuffer of their own (to move to a thread). */
const ownMemory = (span: Buffer): ArrayBuffer => (span.byteOffset === 0 && span.byteLength === span.buffer.byteLength
  ? span.buffer : span.buffer.slice(span.byteOffset, span.byteOffset + span.byteLength)) as ArrayBuffer;

/** Objects looked up at a time by checkManyOn. */
const CHECK_CHUNK = 8192;

const describe = (l: { hash: Buffer } & Loc): string =>
  `object ${l.hash.toString('hex').slice(0, 16)}… (pack ${l.pack} offset ${l.offset})`;
