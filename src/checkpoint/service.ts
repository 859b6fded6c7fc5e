// What the server wraps in operations: create, list, show, restore, delete, verify, gc and retention of
// checkpoints. One CheckpointService per data directory (it holds the store's lock).
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { VmManager } from '../vm/manager.ts';
import { isAlive } from '../host/process.ts';
import { recoverInterruptedCapture } from './boot-recovery.ts';
import { captureCheckpoint } from './capture.ts';
import { DiskCheckpoints } from './disk.ts';
import { diskImageProblem } from './disk-verify.ts';
import type { PauseChoice } from './pause-mode.ts';
import { abandonMigration } from './migration.ts';
import { waitWorkerExit } from './worker/client.ts';
import {
  clearWorkerFiles,
  liveWorkerPid,
  readJob,
  readResult,
  workerFiles,
  type WorkerJob,
} from './worker/protocol.ts';
import { restoreCheckpoint, type RestoreOptions, type RestoreResult } from './restore.ts';
import { RestoreSlots } from './restore-slots.ts';
import { CheckpointStore, type Manifest, type VerifyReport, type FaultInjection } from './page-store/index.ts';
import type { VmRecord } from '../vm/records.ts';
import { WorkingSets } from './working-set.ts';
import {
  Bucket, fetchCheckpoint, parseStoreUrl, readRecord, specForThisHost, uploadCheckpoint, type UploadStats,
} from './remote/index.ts';

export interface CheckpointSummary {
  id: string;
  vmId: string;
  vmName: string;
  createdAt: string;
  kind: 'manual' | 'scheduled';
  label?: string;
  parent: string | null;
  pauseMs: number | null;
  durationMs: number;
  /** What the checkpoint adds over its parent, counted as if the store held nothing of other VMs (ownBytes). */
  newBytes: number;
  diskBytes: number;
}

/** Keep-rules for scheduled checkpoints (manual ones are never pruned). Each count keeps the newest checkpoint of
 * that many most recent hours / days / ISO weeks / months that have one; keepLast keeps the newest N. A checkpoint
 * kept by any rule stays. */
export interface RetentionRules {
  keepLast?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
}

/** Reports a long action's stages; `operationId` names the server operation it reports for (a capture worker that
 * outlives the server carries it, so the next server can finish that operation). */
export interface Progress {
  (stage: string): void;
  operationId?: string;
  /** A line for the operation's log only (not a stage): e.g. a restore's timeline. */
  log?: (line: string) => void;
}

/** How a capture worker left by a previous server ended. */
export interface WorkerOutcome {
  vmId: string;
  job: WorkerJob;
  ok: boolean;
  error?: string;
  /** The checkpoint, when it was taken. */
  checkpoint?: CheckpointSummary;
  /** The worker died without an outcome: what it had set up in QEMU may still be there (see cleanupAbandoned). */
  abandoned: boolean;
}

/** A capture worker the previous server left is waited for while it makes progress (it drains a stream QEMU must
 * finish: ending it then would freeze the guest), and ended after this long without any. */
const WORKER_STALL_MS = 5 * 60_000;

export class CheckpointService {
  readonly store: CheckpointStore;
  readonly disks: DiskCheckpoints;

  private readonly root: string;
  private readonly qemuImg: string;
  private readonly networkName: (id: string) => string | undefined;
  /** storedBytes' RAM figure per set of checkpoints (their ids): what a set names never changes. */
  private readonly ramUsage = new Map<string, number>();

  /** Where every checkpoint is uploaded after it is taken (`serve --checkpoint-store`), if anywhere. */
  readonly remote?: Bucket;

  /** Stops whatever writes a VM's RAM behind QEMU's back (the server's OpenCL helper writes its window) for a
   * capture: QEMU's write tracking would not see those writes. Its release says why the capture may be inexact. */
  private readonly holdRamWriters: (vmId: string, progress?: Progress) => Promise<() => string | undefined>;

  readonly restoreSlots = new RestoreSlots();

  constructor(
    private readonly vms: VmManager,
    opts: {
      root: string; qemuImg: string; faults?: FaultInjection; remoteUrl?: string;
      holdRamWriters?: (vmId: string, progress?: Progress) => Promise<() => string | undefined>;
      /** The name of network `id` (the server keeps networks): recorded with an upload, so another server can put
       * the VM's cards on its networks of the same names. */
      networkName?: (id: string) => string | undefined;
    },
  ) {
    this.root = opts.root;
    this.networkName = opts.networkName ?? (() => undefined);
    this.holdRamWriters = opts.holdRamWriters ?? (async () => () => undefined);
    if (opts.remoteUrl) this.remote = new Bucket(parseStoreUrl(opts.remoteUrl));
    this.qemuImg = opts.qemuImg;
    this.store = new CheckpointStore(opts.root, { faults: opts.faults });
    this.disks = new DiskCheckpoints(opts.root, opts.qemuImg);
    // At server start, a QEMU a dead server left mid-checkpoint is put right before the VM manager reads its state.
    vms.use({ recoverAtBoot: recoverInterruptedCapture });
  }

  static defaultRoot(dataDir: string): string {
    return join(dataDir, 'checkpoints');
  }

  close(): void {
    this.store.close();
    this.remote?.close();
  }

  /** Takes a checkpoint, then uploads it to `uploadTo` (a schedule's store), else to the server's off-host store. */
  async create(
    ref: string,
    { uploadTo, ...opts }: {
      kind?: 'manual' | 'scheduled'; label?: string; progress?: Progress; operationId?: string; pauseMode?: PauseChoice;
      /** An off-host store URL for this checkpoint instead of the server's (a schedule's own). */
      uploadTo?: string;
      /** Measurements only (see CaptureOptions). */
      inexactTcgPrecopy?: boolean;
    } = {},
  ): Promise<Manifest> {
    const releaseWriters = await this.holdRamWriters(this.vms.get(ref).id, opts.progress);
    let m: Manifest;
    try {
      m = await captureCheckpoint({
        vms: this.vms,
        store: this.store,
        disks: this.disks,
        ref,
        ...opts,
        operationId: opts.operationId ?? opts.progress?.operationId ?? null,
      });
    } finally {
      const inexact = releaseWriters(); // e.g. OpenCL commands still running: noted in the operation's log
      if (inexact) opts.progress?.(inexact);
    }
    const bucket = uploadTo ? new Bucket(parseStoreUrl(uploadTo)) : this.remote;
    if (bucket) {
      opts.progress?.(`uploading to ${bucket.name}`);
      try {
        await this.upload(m.id, bucket);
      } catch (e) {
        throw new Error(
          `checkpoint ${m.id} was taken and is kept on this host, but its upload failed: ${(e as Error).message} ` +
            '(the next checkpoint of the VM uploads what this one lacks)',
        );
      } finally {
        if (bucket !== this.remote) bucket.close();
      }
    }
    return m;
  }

  /** Uploads a checkpoint of this store to `bucket`, else the server's off-host store (idempotent; see remote/). */
  async upload(id: string, bucket = this.remote): Promise<UploadStats> {
    if (!bucket) throw new Error('this server has no checkpoint store off the host (serve --checkpoint-store)');
    const release = await this.store.holdWriter(); // GC keeps what is being read
    try {
      const m = this.show(id);
      const vm = this.vms.records.get(m.vmId);
      if (!vm) throw new Error(`VM ${m.vmId} of checkpoint ${id} is gone`);
      const networks = vm.spec.nics?.map((n) => this.networkName(n.network) ?? null);
      return await uploadCheckpoint(bucket, this.store, m, {
        name: vm.name, spec: vm.spec, ...(networks ? { networks } : {}),
      });
    } finally {
      release();
    }
  }

  /**
   * Restores a checkpoint from an off-host store (the URL of another server's `--checkpoint-store`) as a new VM of
   * `ownerId` named `as` (else as it was): downloads what it needs into this store (checked), makes the VM from the
   * recorded spec, restores. A VM made here is deleted again when the restore fails.
   */
  async restoreFromStore(
    url: string,
    o: {
      vm: string; id: string; as?: string; ownerId: string; mode?: RestoreOptions['mode']; progress?: Progress;
      /** This server's network ids for networks of these names (the caller's checks: may attach, a free lease). */
      networks?: (names: string[]) => string[];
    },
  ): Promise<{ vm: VmRecord; result: RestoreResult }> {
    const bucket = new Bucket(parseStoreUrl(url));
    try {
      o.progress?.(`reading checkpoint ${o.id} in ${bucket.name}`);
      const rec = await readRecord(bucket, o.id);
      if (!rec) throw new Error(`checkpoint '${o.id}' is not in ${bucket.name}`);
      if (o.vm !== rec.vm.name && o.vm !== rec.manifest.vmId)
        throw new Error(`checkpoint ${o.id} in ${bucket.name} is of VM '${rec.vm.name}', not '${o.vm}'`);
      const spec = specForThisHost(rec.vm, o.networks);
      const name = o.as ?? rec.vm.name;
      if (this.vms.records.byName(name)) throw new Error(`a VM named '${name}' already exists here: give --as NAME`);
      await fetchCheckpoint(bucket, this.store, this.qemuImg, o.id, o.progress);
      const vm = await this.vms.createFromSpec(name, o.ownerId, spec);
      try {
        // Every pack was checked as it came (its SHA-256 is its name); each page is again as it is sent.
        const result = await this.restore(o.id, o.progress, { targetVmId: vm.id, mode: o.mode, fresh: true });
        return { vm: this.vms.get(vm.id), result };
      } catch (e) {
        await this.vms.forceStop(vm.id).catch(() => undefined);
        await this.vms.delete(vm.id).catch(() => undefined);
        throw e;
      }
    } finally {
      bucket.close();
    }
  }

  // ---- capture workers left by a previous server (see worker/) ----

  /** VMs with a capture worker's job in their folder (running, or ended with an outcome nobody took yet). */
  leftoverWorkers(): { vmId: string; job: WorkerJob; pid?: number }[] {
    const out: { vmId: string; job: WorkerJob; pid?: number }[] = [];
    for (const vm of this.vms.list()) {
      const files = workerFiles(this.vms.paths(vm).dir);
      const job = readJob(files);
      if (job) out.push({ vmId: vm.id, job, pid: liveWorkerPid(files) });
    }
    return out;
  }

  /**
   * Waits until the VM's leftover capture worker has ended (it finishes or aborts the checkpoint on its own; one
   * that shows no progress for `stallMs` is ended), takes its outcome and forgets its files. Call before anything
   * connects to the VM's QMP: while the worker runs, it may hold it.
   */
  async settleWorker(vmId: string, stallMs = WORKER_STALL_MS): Promise<WorkerOutcome | undefined> {
    const files = workerFiles(this.vms.paths(this.vms.get(vmId)).dir);
    const job = readJob(files);
    if (!job) return undefined;
    if (!(await waitWorkerExit(files, Infinity, stallMs))) {
      const pid = liveWorkerPid(files);
      if (pid !== undefined) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
      }
    }
    const result = readResult(files);
    const checkpoint = this.store.get(job.checkpointId)
      ? this.list(vmId).find((c) => c.id === job.checkpointId)
      : undefined;
    clearWorkerFiles(files);
    this.store.recoverOrphans();
    const ok = !!checkpoint;
    return {
      vmId,
      job,
      ok,
      checkpoint,
      abandoned: !result && !checkpoint,
      ...(ok
        ? {}
        : { error: result?.error ?? `the capture worker ended without finishing the checkpoint (see ${files.log})` }),
    };
  }

  /** After a worker that died without an outcome: ends what it may have left in QEMU (a migration, the disk backup
   * and its image) and lets the guest run if it did before. The VM must be attached again. */
  async cleanupAbandoned(o: WorkerOutcome): Promise<void> {
    if (!o.abandoned) return;
    await this.vms.withQmp(o.vmId, async (qmp) => {
      await abandonMigration(qmp, { background: o.job.live, wasRunning: o.job.live });
      if (o.job.disk) await this.disks.abort(qmp, o.job.disk);
    }, { ownRunState: true, action: 'clean up a checkpoint of' });
  }

  /**
   * What the checkpoints of these VMs hold: the distinct RAM objects they name (counted as if nothing else were
   * stored) plus the space their disk images take on the host. For per-owner quotas.
   */
  storedBytes(vmIds: Set<string>): number {
    const ms = this.store.list().filter((m) => vmIds.has(m.vmId));
    const files = new Set(ms.flatMap((m) => m.disks.map((d) => d.file)));
    let disk = 0;
    for (const f of files) {
      try {
        disk += statSync(join(this.root, f)).blocks * 512;
      } catch {
        // removed meanwhile (a delete merging images): not held any more
      }
    }
    // The RAM part reads every page table these checkpoints name: remembered per set of checkpoints, so a user
    // asking for their quota again and again costs a lookup, not a walk of the store (the set changes when a
    // checkpoint is taken or deleted, and then the key with it).
    const key = ms.map((m) => m.id).sort().join(',');
    let ram = this.ramUsage.get(key);
    if (ram === undefined) {
      ram = this.store.storedBytesOf(ms);
      if (this.ramUsage.size >= 256) this.ramUsage.clear();
      this.ramUsage.set(key, ram);
    }
    return ram + disk;
  }

  list(ref?: string): CheckpointSummary[] {
    const vmId = ref ? this.vms.get(ref).id : undefined;
    return this.store.list(vmId).map(summary);
  }

  show(id: string): Manifest {
    const m = this.store.get(id);
    if (!m) throw new Error(`no checkpoint '${id}'`);
    return m;
  }

  /** Restores in place, or into `targetVmId` (a new VM made with VmManager.createLike); lazy unless mode 'eager'.
   * Waits its turn first: one restore per owner of the target VM at a time, a few for the server (restore-slots.ts). */
  async restore(
    id: string,
    progress?: Progress,
    opts: Pick<RestoreOptions, 'targetVmId' | 'mode' | 'onRunning' | 'uffdUnusable' | 'fresh'> = {},
  ): Promise<RestoreResult> {
    const owner = this.vms.get(opts.targetVmId ?? this.show(id).vmId).ownerId;
    const release = await this.restoreSlots.acquire(owner, (n) =>
      progress?.(`waiting for a restore to end (${n} running: one per user and ${this.restoreSlots.total} at once)`));
    try {
      return await restoreCheckpoint({
        vms: this.vms, store: this.store, disks: this.disks, id, progress, log: progress?.log, ...opts,
      });
    } finally {
      release();
    }
  }

  /** Deletes checkpoints: manifests first (atomic), then their disk images (merged into the images backed by them),
   * then the store's unreferenced objects. */
  async delete(ids: string[]): Promise<{ removedImages: string[] }> {
    const ms = ids.map((id) => this.show(id));
    for (const m of ms) {
      this.store.removeManifest(m.id);
      new WorkingSets(this.store.root).remove(m.id);
    }
    const removedImages: string[] = [];
    for (const vmId of new Set(ms.map((m) => m.vmId))) {
      removedImages.push(...(await this.collectDisks(vmId)));
    }
    await this.store.gc();
    return { removedImages };
  }

  private async collectDisks(vmId: string): Promise<string[]> {
    const remaining = this.store.list(vmId);
    const used = new Set(remaining.flatMap((m) => m.disks.map((d) => d.file)));
    // The image of a checkpoint being taken now is in no manifest yet.
    const vm = this.vms.records.get(vmId);
    const running = vm ? readJob(workerFiles(this.vms.paths(vm).dir)) : undefined;
    if (running?.disk) used.add(running.disk.file);
    const { removed, rebased } = await this.disks.collect(vmId, used);
    for (const m of remaining) {
      let changed = false;
      for (const d of m.disks) {
        if (rebased.has(d.file)) {
          d.backing = rebased.get(d.file)!;
          // The parent's clusters were merged in: the image holds more of its own.
          d.digest = await this.disks.digest(d.file);
          d.bytes = statSync(join(this.root, d.file)).blocks * 512;
          changed = true;
        }
      }
      if (changed) this.store.rewriteManifest(m);
    }
    return removed;
  }

  /** Checks every object of the store (store.checkObjects) and every checkpoint's disk image (disk-verify.ts), with
   * no checkpoint being written meanwhile; with `ids`, only what those checkpoints need. Disk problems are listed
   * under their checkpoint as `disk FILE: what`. */
  verify(ids?: string[]): Promise<VerifyReport & { diskImages: number }> {
    return this.store.exclusive(async () => {
      const rep = this.store.checkObjects(ids);
      let diskImages = 0;
      for (const m of this.store.list().filter((x) => !ids || ids.includes(x.id))) {
        for (const d of m.disks) {
          diskImages++;
          let problem = await diskImageProblem(this.qemuImg, this.root, d);
          // A delete running beside us may have merged a parent into this image and rewritten the manifest.
          if (problem) {
            const now = this.store.get(m.id)?.disks.find((x) => x.file === d.file);
            problem = now && now.digest !== d.digest ? await diskImageProblem(this.qemuImg, this.root, now) : problem;
            if (!now) problem = null;
          }
          if (problem) (rep.broken[m.id] ??= []).push(`disk ${d.file}: ${problem}`);
        }
      }
      return { ...rep, diskImages, ok: rep.ok && Object.keys(rep.broken).length === 0 };
    });
  }

  gc(): Promise<{ deadObjects: number; packsRewritten: number; bytesFreed: number }> {
    return this.store.gc();
  }

  /** Applies retention rules to one VM's scheduled checkpoints. With dryRun, only says what it would delete. */
  async prune(
    ref: string,
    rules: RetentionRules,
    opts: { dryRun?: boolean; now?: Date } = {},
  ): Promise<{ keep: string[]; delete: string[] }> {
    const vm = this.vms.get(ref);
    const all = this.store.list(vm.id);
    const { keep, drop } = selectRetention(all, rules);
    if (!opts.dryRun && drop.length) await this.delete(drop);
    return { keep, delete: drop };
  }
}

function summary(m: Manifest): CheckpointSummary {
  return {
    id: m.id,
    vmId: m.vmId,
    vmName: m.vmName,
    createdAt: m.createdAt,
    kind: m.kind,
    ...(m.label ? { label: m.label } : {}),
    parent: m.parent,
    pauseMs: m.stats.pauseMs,
    durationMs: m.stats.durationMs,
    // Never the store-wide figure (it shows whether other owners hold the same pages); see Manifest stats.ownBytes.
    newBytes: m.stats.ownBytes ?? m.stats.newBytes,
    diskBytes: m.disks.reduce((a, d) => a + d.bytes, 0),
  };
}

/** The retention decision, pure (exported for tests). Manual checkpoints are always kept. */
export function selectRetention(
  all: Pick<Manifest, 'id' | 'createdAt' | 'kind'>[],
  rules: RetentionRules,
): { keep: string[]; drop: string[] } {
  const sched = all.filter((m) => m.kind === 'scheduled').sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const keep = new Set(all.filter((m) => m.kind === 'manual').map((m) => m.id));
  sched.slice(0, rules.keepLast ?? 0).forEach((m) => keep.add(m.id));
  const buckets: [number | undefined, (d: Date) => string][] = [
    [rules.hourly, (d) => d.toISOString().slice(0, 13)],
    [rules.daily, (d) => d.toISOString().slice(0, 10)],
    [rules.weekly, isoWeek],
    [rules.monthly, (d) => d.toISOString().slice(0, 7)],
  ];
  for (const [count, key] of buckets) {
    if (!count) continue;
    const seen = new Set<string>();
    for (const m of sched) {
      const k = key(new Date(m.createdAt));
      if (seen.has(k)) continue;
      if (seen.size >= count) break;
      seen.add(k);
      keep.add(m.id); // the newest of its bucket
    }
  }
  return {
    keep: all.filter((m) => keep.has(m.id)).map((m) => m.id),
    drop: sched.filter((m) => !keep.has(m.id)).map((m) => m.id),
  };
}

function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const y0 = new Date(Date.UTC(t.getUTCFullYear(), 0, 1));
  return `${t.getUTCFullYear()}-W${Math.ceil(((t.getTime() - y0.getTime()) / 86_400_000 + 1) / 7)}`;
}
