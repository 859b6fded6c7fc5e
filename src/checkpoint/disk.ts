// Disk checkpoints: a persistent dirty bitmap plus incremental backups into a qcow2 chain (the QMP and qemu-img
// sequences: docs/checkpoint-stream.md §2.3).
//
// The first checkpoint of a VM (or the first after the bitmap was lost: QEMU crashed, the disk was replaced by a
// restore) takes, in the checkpoint's pause, `block-dirty-bitmap-add oriel (persistent)` + `blockdev-backup
// sync=full` in one `transaction`; later ones take `blockdev-backup sync=incremental bitmap=oriel`. The backup job
// starts in the pause (so its image is the disk at the RAM instant: copy-before-write keeps old data for clusters the
// guest writes after the resume) and runs after it; with bitmap-mode on-success the bitmap then holds exactly the
// writes since this checkpoint. Each checkpoint's image holds only the clusters written since the previous one and
// is backed by the previous one's image:
//   disks/<vmId>/<ckptId>.qcow2  ->  disks/<vmId>/<parentId>.qcow2  -> ... -> the full one
// head.json names the image the bitmap counts from; only when it is there (and the bitmap is sound) is the next
// backup incremental.
import { execFile } from 'node:child_process';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import type { QmpClient } from '../vm/qmp/index.ts';
import { DISK_NODE } from '../vm/qemu-args.ts';
import type { DiskRecord } from './page-store/index.ts';
import { diskDigest } from './disk-verify.ts';

const run = promisify(execFile);
export const BITMAP = 'oriel';

interface Head { checkpointId: string; file: string }

/** A checkpoint's disk backup, as plain data: whoever holds QMP when the checkpoint ends (the server, or a capture
 * worker that outlived it) can finish or abort it from this alone. */
export interface DiskJob {
  vmId: string;
  checkpointId: string;
  /** The target image's block node in QEMU. */
  node: string;
  jobId: string;
  /** The target image, relative to the checkpoint root. */
  file: string;
  incremental: boolean;
  /** The image `file` is backed by (relative), when incremental. */
  backing: string | null;
}

export interface DiskPlan {
  job: DiskJob;
  /** Actions for the `transaction` issued in the pause. */
  actions: object[];
  /** Bytes the backup will copy (the bitmap's dirty count, or the whole disk for a full one): a precopy pause waits
   * for the copy (capture.ts), so it is chosen only when this is small. */
  copyBytes: number;
}

/** Names of a checkpoint's disk objects, fixed by its id (so a worker can clean up a plan it never heard of). */
export function diskNames(vmId: string, checkpointId: string): Pick<DiskJob, 'node' | 'jobId' | 'file'> {
  return {
    node: `ock-${checkpointId.slice(0, 20)}`,
    jobId: `ockjob-${checkpointId.slice(0, 20)}`,
    file: join('disks', vmId, `${checkpointId}.qcow2`),
  };
}

interface JobInfo {
  id: string;
  type: string;
  status: string;
  'current-progress': number;
  'total-progress': number;
  error?: string;
}
/** A backup that makes no progress for this long is given up. */
const JOB_STALL_MS = 60_000;

interface BitmapInfo {
  name: string; recording: boolean; busy: boolean; persistent: boolean; inconsistent?: boolean; count?: number;
}

export class DiskCheckpoints {
  constructor(private readonly root: string, private readonly qemuImg: string) {}

  private vmDir(vmId: string): string {
    const d = join(this.root, 'disks', vmId);
    mkdirSync(d, { recursive: true, mode: 0o700 });
    return d;
  }

  head(vmId: string): Head | undefined {
    const f = join(this.root, 'disks', vmId, 'head.json');
    if (!existsSync(f)) return undefined;
    const h = JSON.parse(readFileSync(f, 'utf8')) as Head;
    return existsSync(join(this.root, h.file)) ? h : undefined;
  }

  setHead(vmId: string, head: Head | null): void {
    const f = join(this.vmDir(vmId), 'head.json');
    if (!head) return rmSync(f, { force: true });
    writeFileSync(`${f}.tmp`, JSON.stringify(head));
    renameSync(`${f}.tmp`, f);
  }

  /**
   * Prepares what the pause needs (outside the pause): the target image, opened as a block node, and the
   * transaction actions. Returns undefined for a VM without a disk.
   */
  async plan(qmp: QmpClient, vmId: string, ckptId: string): Promise<DiskPlan | undefined> {
    const blocks = await qmp.execute('query-block');
    const dev = blocks.find((b) => b.inserted?.['node-name'] === DISK_NODE);
    if (!dev?.inserted) return undefined;
    const size = dev.inserted.image['virtual-size'];
    const bitmaps = ((dev.inserted as unknown as { 'dirty-bitmaps'?: BitmapInfo[] })['dirty-bitmaps'] ?? []);
    const bm = bitmaps.find((b) => b.name === BITMAP);
    const head = this.head(vmId);
    const incremental = !!(head && bm && bm.recording && !bm.busy && !bm.inconsistent);
    if (bm && !incremental) {
      // A bitmap we cannot trust (no head image to count from, or QEMU marked it inconsistent): start over.
      await qmp.execute('block-dirty-bitmap-remove', { node: DISK_NODE, name: BITMAP });
    }
    const { node, jobId, file: rel } = diskNames(vmId, ckptId);
    const file = join(this.root, rel);
    this.vmDir(vmId);
    await run(this.qemuImg, [
      'create',
      '-q',
      '-f',
      'qcow2',
      ...(incremental ? ['-F', 'qcow2', '-b', join(this.root, head!.file)] : []),
      file,
      String(size),
    ]);
    // backing: null: the job only writes clusters; the chain is needed when the image is read, not now.
    await qmp.execute('blockdev-add', {
      driver: 'qcow2',
      'node-name': node,
      file: { driver: 'file', filename: file },
      backing: null,
    });
    const actions: object[] = [];
    if (!incremental)
      actions.push({ type: 'block-dirty-bitmap-add', data: { node: DISK_NODE, name: BITMAP, persistent: true } });
    actions.push({
      type: 'blockdev-backup',
      data: {
        device: DISK_NODE, target: node, 'job-id': jobId, sync: incremental ? 'incremental' : 'full',
        ...(incremental ? { bitmap: BITMAP } : {}),
        // Concluded jobs stay listed (with their error) until dismissed: the outcome can be read later, by another
        // QMP client, even if its completion event went to a connection that is gone.
        'auto-finalize': true, 'auto-dismiss': false,
      },
    });
    return {
      job: {
        vmId,
        checkpointId: ckptId,
        node,
        jobId,
        file: rel,
        incremental,
        backing: incremental ? head!.file : null,
      },
      actions,
      copyBytes: incremental ? (bm?.count ?? size) : size,
    };
  }

  /**
   * After the pause: waits for the backup job to conclude, dismisses it, closes the target node, makes the image
   * durable and the head of the chain; returns the record for the manifest. Safe to call again after a caller that
   * died half-way (a job already gone is fine if head.json names this checkpoint).
   */
  async finish(qmp: QmpClient, job: DiskJob): Promise<DiskRecord> {
    const info = await waitJob(qmp, job.jobId);
    const file = join(this.root, job.file);
    if (!info) {
      if (this.head(job.vmId)?.checkpointId !== job.checkpointId)
        throw new Error(`disk backup job ${job.jobId} is gone and its outcome unknown`);
    } else {
      await qmp.execute('job-dismiss', { id: job.jobId }).catch(() => undefined);
      if (info.error) throw new Error(`disk backup failed: ${info.error}`);
      await qmp.execute('blockdev-del', { 'node-name': job.node }).catch(() => undefined);
      const fd = openSync(file, 'r+');
      try { fsyncSync(fd); } finally { closeSync(fd); }
      this.setHead(job.vmId, { checkpointId: job.checkpointId, file: job.file });
    }
    return {
      node: DISK_NODE,
      file: job.file,
      backing: job.backing,
      mode: job.incremental ? 'incremental' : 'full',
      bytes: statSync(file).blocks * 512,
      digest: await this.digest(job.file),
    };
  }

  /** The digest of what a checkpoint image (relative to the root) holds itself: recorded in its manifest, checked by
   * verify (disk-verify.ts). */
  digest(rel: string): Promise<string> {
    return diskDigest(this.qemuImg, join(this.root, rel));
  }

  /** Gives up (the checkpoint failed): cancels the job if it runs, dismisses it, closes the node, deletes the image.
   * Any of these may have happened already. */
  async abort(qmp: QmpClient | undefined, job: Pick<DiskJob, 'node' | 'jobId' | 'file'>): Promise<void> {
    if (qmp && !qmp.isClosed) {
      await qmp.execute('block-job-cancel', { device: job.jobId, force: true }).catch(() => undefined);
      await waitJob(qmp, job.jobId, 10_000).catch(() => undefined);
      await qmp.execute('job-dismiss', { id: job.jobId }).catch(() => undefined);
      await qmp.execute('blockdev-del', { 'node-name': job.node }).catch(() => undefined);
    }
    rmSync(join(this.root, job.file), { force: true });
  }

  /**
   * Writes the disk of a checkpoint as a VM's disk: a qcow2 overlay on the VM's base image (or standalone) with the
   * checkpoint's content, written beside `dest` then renamed over it.
   */
  async restoreTo(rec: DiskRecord, dest: string, base?: { file: string; format: string }): Promise<void> {
    (await this.stageRestore(rec, dest, base)).commit();
  }

  /** The first half of restoreTo: the checkpoint's disk written beside `dest` (nothing of the VM touched yet, so a
   * restore in place can do it while the VM still runs); `commit` renames it over `dest`, `discard` deletes it. */
  async stageRestore(
    rec: DiskRecord,
    dest: string,
    base?: { file: string; format: string },
  ): Promise<{ commit(): void; discard(): void }> {
    const tmp = `${dest}.restore-tmp`;
    rmSync(tmp, { force: true });
    const src = join(this.root, rec.file);
    try {
      await run(
        this.qemuImg,
        ['convert', '-q', '-O', 'qcow2', ...(base ? ['-B', base.file, '-F', base.format] : []), src, tmp],
        { timeout: 3_600_000 },
      );
      const fd = openSync(tmp, 'r+');
      try { fsyncSync(fd); } finally { closeSync(fd); }
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
    return { commit: () => renameSync(tmp, dest), discard: () => rmSync(tmp, { force: true }) };
  }

  /**
   * Removes disk images no manifest uses. An unused image that others are backed by is merged into each of them
   * first (`qemu-img rebase` onto its own backing, on a copy renamed over the original: a crash leaves either the
   * old or the new child, both restorable). `used` = images (relative paths) named by manifests; head.json's image is
   * kept too. Returns the removed images and the new backing of each image that was rebased.
   */
  async collect(vmId: string, used: Set<string>): Promise<{ removed: string[]; rebased: Map<string, string | null> }> {
    const dir = join(this.root, 'disks', vmId);
    const rebased = new Map<string, string | null>();
    if (!existsSync(dir)) return { removed: [], rebased };
    const head = this.head(vmId);
    if (head) used.add(head.file);
    const backing = new Map<string, string | null>();
    for (const f of readdirSync(dir)) {
      if (!f.endsWith('.qcow2')) continue;
      const rel = join('disks', vmId, f);
      const { stdout } = await run(this.qemuImg, ['info', '-U', '--output=json', join(this.root, rel)]);
      const b = (JSON.parse(stdout) as { 'backing-filename'?: string })['backing-filename'];
      backing.set(rel, b ? relative(this.root, b) : null);
    }
    const removed: string[] = [];
    for (const dead of [...backing.keys()].filter((f) => !used.has(f))) {
      const newBacking = backing.get(dead) ?? null;
      for (const [child, b] of backing) {
        if (b !== dead) continue;
        const c = join(this.root, child);
        const tmp = `${c}.rebase-tmp`;
        await run('cp', ['--reflink=auto', c, tmp]);
        await run(this.qemuImg, [
          'rebase',
          '-q',
          '-f',
          'qcow2',
          '-b',
          newBacking ? join(this.root, newBacking) : '',
          ...(newBacking ? ['-F', 'qcow2'] : []),
          tmp,
        ]);
        const fd = openSync(tmp, 'r+');
        try { fsyncSync(fd); } finally { closeSync(fd); }
        renameSync(tmp, c);
        backing.set(child, newBacking);
        rebased.set(child, newBacking);
      }
      rmSync(join(this.root, dead), { force: true });
      backing.delete(dead);
      removed.push(dead);
    }
    return { removed, rebased };
  }
}

/** Polls `query-jobs` until the job has concluded; returns it, or undefined if QEMU does not list it. Throws if it
 * makes no progress for JOB_STALL_MS (or `stallMs`). */
async function waitJob(qmp: QmpClient, jobId: string, stallMs = JOB_STALL_MS): Promise<JobInfo | undefined> {
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const jobs = await qmp.execute<JobInfo[]>('query-jobs');
    const j = jobs.find((x) => x.id === jobId);
    if (!j || j.status === 'concluded' || j.status === 'null') return j;
    if (j['current-progress'] !== last) {
      last = j['current-progress'];
      lastChange = Date.now();
    } else if (Date.now() - lastChange > stallMs) {
      throw new Error(
        `disk backup job ${jobId} made no progress for ${Math.round(stallMs / 1000)} s (status ${j.status})`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
