// A checkpoint's manifest: everything needed to rebuild its migration stream and its disk, naming store objects by
// hash. It is written last (after every object it names is durable), to a temporary file that is fsynced and then
// renamed into manifests/<id>.json: a checkpoint exists exactly when its manifest does.
//
// RAM pages are mapped through page tables: each RAM block is cut into chunks of 1024 pages (4 MiB of guest RAM);
// a chunk's table is 1024 × 32 bytes (the page's SHA-256, or 32 zero bytes for a zero page), itself a store object.
// Unchanged 4 MiB regions share their table object with the previous checkpoint, all-zero regions share one, so a
// manifest is about 1 KiB per 64 MiB of RAM and a checkpoint's new storage is its changed pages and their tables.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export const MANIFEST_FORMAT = 1;
export const PAGES_PER_TABLE = 1024;

export interface ManifestBlock {
  id: string;
  length: number;
  /** Hex hashes of the page tables, one per 1024 pages. */
  tables: string[];
}

export interface DiskRecord {
  /** Node name in QEMU (qemu-args.ts DISK_NODE). */
  node: string;
  /** The checkpoint's image, relative to the checkpoint root: a qcow2 holding the clusters written since `parent`'s
   * image, backed by it (the first one holds the whole disk). */
  file: string;
  /** The image this one is backed by, relative to the root, or null. */
  backing: string | null;
  mode: 'full' | 'incremental';
  /** Bytes the image file takes. */
  bytes: number;
  /** SHA-256 of the clusters the image holds itself (disk-verify.ts diskDigest), checked by verify. Absent in
   * manifests written before it existed. */
  digest?: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  id: string;
  vmId: string;
  vmName: string;
  createdAt: string;
  /** The checkpoint taken before this one for the same VM (its disk image is this one's backing), or null. */
  parent: string | null;
  /** manual checkpoints are never pruned by retention rules. */
  kind: 'manual' | 'scheduled';
  label?: string;
  qemu: { version: string; machine: string };
  /** The VM's spec at capture (memory, devices): restore refuses a VM whose device model differs. */
  spec: Record<string, unknown>;
  /** The run state QEMU records (globalstate): restore continues the guest if it was running. */
  wasRunning: boolean;
  /** The guest had shown its image's ready marker (its command channel works) when the checkpoint was taken. */
  guestReady: boolean;
  stream: {
    header: string;
    ramSectionId: number;
    blocks: ManifestBlock[];
    deviceState: string;
    vmdesc: string | null;
  };
  disks: DiskRecord[];
  stats: CaptureStats;
}

export interface CaptureStats {
  /** STOP → RESUME, from QEMU's event timestamps (ms). */
  pauseMs: number | null;
  /** How a running VM was paused (capture.ts, pause-mode.ts); absent: background (and before precopy existed), or a
   * VM its user paused. */
  pauseMode?: 'background' | 'precopy';
  /** From the request to the manifest being durable (ms). */
  durationMs: number;
  streamBytes: number;
  pages: number;
  zeroPages: number;
  /** Objects (pages, tables, blobs) this checkpoint added to the store, and their bytes on disk. */
  newObjects: number;
  newBytes: number;
  /** What this checkpoint adds over its parent, counted as if no other VM's checkpoint were in the store: the stored
   * size of the distinct objects it names that its parent does not name at the same place. Depends on this VM's
   * own content only, so it tells no owner about another's pages; users see it and quotas count it. Absent in
   * manifests written before it existed. */
  ownBytes?: number;
}

/** Writes `data` to `path` so that the file is either absent or complete: temp file, fsync, rename, fsync dir. */
export function writeFileAtomic(path: string, data: string | Buffer): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    let at = 0;
    while (at < b.length) at += writeSync(fd, b, at);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  const d = openSync(dirname(path), 'r');
  try { fsyncSync(d); } finally { closeSync(d); }
}
