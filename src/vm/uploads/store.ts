// Images users upload: ISO install media and disk images. A row in SQLite (uploaded_images) and a file,
// <dataDir>/images/<id>/data, in a 0700 folder. An upload is announced with its size (checked against the owner's
// quota and the free space before a byte arrives), filled by chunks at increasing offsets (receive.ts: resumable,
// each chunk streamed to disk), and becomes `ready` once complete and its format is known (detect.ts).
// An image is its owner's: others neither see nor use it; admins do both.
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { conflict, forbidden, notFound, OrielError } from '../../errors.ts';
import type { Db } from '../../db/database.ts';
import { imageBuilder } from '../images/registry.ts';

export interface UploadedImageRecord {
  id: string;
  name: string;
  ownerId: string;
  state: 'uploading' | 'ready';
  kind: 'iso' | 'disk' | null;
  /** How QEMU opens it: raw (ISOs, raw disks) or qcow2. Pinned when the upload completes, never probed again. */
  format: 'raw' | 'qcow2' | null;
  sizeBytes: number;
  receivedBytes: number;
  virtualSize: number | null;
  createdAt: string;
}

interface Row {
  id: string; name: string; owner_id: string; state: string; kind: string | null; format: string | null;
  size_bytes: number; received_bytes: number; virtual_size: number | null; created_at: string;
}

const fromRow = (r: Row): UploadedImageRecord => ({
  id: r.id, name: r.name, ownerId: r.owner_id, state: r.state as UploadedImageRecord['state'],
  kind: r.kind as UploadedImageRecord['kind'], format: r.format as UploadedImageRecord['format'],
  sizeBytes: r.size_bytes, receivedBytes: r.received_bytes, virtualSize: r.virtual_size, createdAt: r.created_at,
});

/** Who asks: their id, and whether they are an admin (who may see and use every image). */
export interface Caller { id: string; admin: boolean }

/** Space left beside an upload on the data directory's file system, so a full disk refuses at once. */
const SPARE_BYTES = 256 * 1024 * 1024;

export class UploadedImages {
  constructor(private readonly db: Db, private readonly dataDir: string) {}

  dir(img: Pick<UploadedImageRecord, 'id'>): string {
    return join(this.dataDir, 'images', img.id);
  }

  file(img: Pick<UploadedImageRecord, 'id'>): string {
    return join(this.dir(img), 'data');
  }

  list(ownerId?: string): UploadedImageRecord[] {
    const rows = ownerId
      ? this.db.prepare('SELECT * FROM uploaded_images WHERE owner_id = ? ORDER BY name').all(ownerId)
      : this.db.prepare('SELECT * FROM uploaded_images ORDER BY name').all();
    return (rows as Row[]).map(fromRow);
  }

  byName(name: string): UploadedImageRecord | undefined {
    const r = this.db.prepare('SELECT * FROM uploaded_images WHERE name = ?').get(name) as Row | undefined;
    return r && fromRow(r);
  }

  /** The image `name`, if `caller` may use it (its owner, or an admin). */
  get(name: string, caller: Caller): UploadedImageRecord {
    const img = this.byName(name);
    if (!img) throw notFound(`no uploaded image named '${name}'`);
    if (!caller.admin && img.ownerId !== caller.id) throw forbidden(`image '${name}' belongs to another user`);
    return img;
  }

  /** A ready image for a VM of `caller`: of `kind`. */
  usable(name: string, caller: Caller, kind: 'iso' | 'disk'): UploadedImageRecord {
    const img = this.get(name, caller);
    if (img.state !== 'ready')
      throw conflict(`image '${name}' is still uploading (${img.receivedBytes} of ${img.sizeBytes} bytes)`);
    if (img.kind !== kind) {
      throw new OrielError(400, kind === 'iso'
        ? `image '${name}' is a disk image, not an ISO: use it as --image`
        : `image '${name}' is an ISO: use it as --cdrom`, 'bad_image');
    }
    return img;
  }

  /**
   * Announces an upload of `sizeBytes` by `ownerId`. `admit` (the quota) throws to refuse; it runs right before the
   * row is written, with no await between. The file is created empty.
   */
  create(ownerId: string, name: string, sizeBytes: number, admit?: (ownerId: string, bytes: number) => void):
  UploadedImageRecord {
    if (imageBuilder(name)) throw conflict(`'${name}' is the name of an image Oriel builds: choose another`);
    if (this.byName(name)) throw conflict(`an image named '${name}' already exists`);
    const root = join(this.dataDir, 'images');
    mkdirSync(root, { recursive: true, mode: 0o700 });
    const fs = statfsSync(root);
    const free = fs.bavail * fs.bsize;
    if (sizeBytes + SPARE_BYTES > free)
      // 413, not 507: the request is too large for this server; nothing is wrong with the server itself.
      throw new OrielError(413, `not enough free space on the server for ${sizeBytes} bytes`, 'insufficient_storage');
    admit?.(ownerId, sizeBytes);
    const id = randomBytes(6).toString('hex');
    try {
      this.db
        .prepare(`INSERT INTO uploaded_images (id, name, owner_id, state, size_bytes, received_bytes, created_at)
          VALUES (?, ?, ?, 'uploading', ?, 0, ?)`)
        .run(id, name, ownerId, sizeBytes, new Date().toISOString());
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw conflict(`an image named '${name}' already exists`);
      throw e;
    }
    const img = this.byName(name)!;
    try {
      mkdirSync(this.dir(img), { mode: 0o700 });
      closeSync(openSync(this.file(img), 'wx', 0o600));
    } catch (e) {
      this.remove(img);
      throw e;
    }
    return img;
  }

  setReceived(id: string, receivedBytes: number): void {
    this.db.prepare('UPDATE uploaded_images SET received_bytes = ? WHERE id = ?').run(receivedBytes, id);
  }

  setReady(id: string, kind: 'iso' | 'disk', format: 'raw' | 'qcow2', virtualSize: number | null): UploadedImageRecord {
    this.db
      .prepare(`UPDATE uploaded_images SET state = 'ready', kind = ?, format = ?, virtual_size = ? WHERE id = ?`)
      .run(kind, format, virtualSize, id);
    return fromRow(this.db.prepare('SELECT * FROM uploaded_images WHERE id = ?').get(id) as Row);
  }

  /** The row and the file, whatever their state (the caller checks that no VM uses it). */
  remove(img: UploadedImageRecord): void {
    rmSync(this.dir(img), { recursive: true, force: true });
    this.db.prepare('DELETE FROM uploaded_images WHERE id = ?').run(img.id);
  }

  /** Bytes `ownerId`'s uploads take (announced sizes: an upload in progress holds its whole size). */
  bytesOf(ownerId: string): number {
    const r = this.db.prepare('SELECT COALESCE(SUM(size_bytes), 0) AS n FROM uploaded_images WHERE owner_id = ?')
      .get(ownerId) as { n: number };
    return r.n;
  }
}
