// A write session of the object store (objects.ts): new objects appended to a pack of its own, visible to readers
// and to other sessions' dedup only once `commit` has made the pack durable and indexed it (the crash-safety rules
// are objects.ts's).
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync, constants as zc } from 'node:zlib';
import { CODEC_DEFLATE, CODEC_RAW, HASH_BYTES, REC_HEADER, looksIncompressible, sha256 } from './codec.ts';
import type { FaultInjection, Loc, ObjectStore, WriteStats } from './objects.ts';

const PACK_MAGIC = Buffer.from('ORPK\0\0\0\x01', 'latin1');
/** A pack is closed and a new one started past this size. */
const PACK_LIMIT = 256 * 2 ** 20;

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


function writeAll(fd: number, b: Buffer, position: number): void {
  let at = 0;
  while (at < b.length) at += writeSync(fd, b, at, b.length - at, position + at);
}
