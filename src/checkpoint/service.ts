// What the server wraps in operations: create, list, show, restore, delete, verify, gc and retention of
// checkpoints. One CheckpointService per data directory (it holds the store's lock).
import { join } from 'node:path';
import type { VmManager } from '../vm/manager.ts';
import { captureCheckpoint } from './capture.ts';
import { DiskCheckpoints } from './disk.ts';
import { restoreCheckpoint, type RestoreResult } from './restore.ts';
import { CheckpointStore, type Manifest, type VerifyReport, type FaultInjection } from './store/index.ts';

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

export interface Progress { (stage: string): void }

export class CheckpointService {
  readonly store: CheckpointStore;
  readonly disks: DiskCheckpoints;

  constructor(private readonly vms: VmManager, opts: { root: string; qemuImg: string; faults?: FaultInjection }) {
    this.store = new CheckpointStore(opts.root, { faults: opts.faults });
    this.disks = new DiskCheckpoints(opts.root, opts.qemuImg);
  }

  static defaultRoot(dataDir: string): string {
    return join(dataDir, 'checkpoints');
  }

  close(): void {
    this.store.close();
  }

  create(ref: string, opts: { kind?: 'manual' | 'scheduled'; label?: string; progress?: Progress } = {}): Promise<Manifest> {
    return captureCheckpoint({ vms: this.vms, store: this.store, disks: this.disks, ref, ...opts });
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

  /** Restores in place, or into `targetVmId` (a new VM made with VmManager.createLike). */
  restore(id: string, progress?: Progress, opts: { targetVmId?: string } = {}): Promise<RestoreResult> {
    return restoreCheckpoint({ vms: this.vms, store: this.store, disks: this.disks, id, progress, targetVmId: opts.targetVmId });
  }

  /** Deletes checkpoints: manifests first (atomic), then their disk images (merged into the images backed by them),
   * then the store's unreferenced objects. */
  async delete(ids: string[]): Promise<{ removedImages: string[] }> {
    const ms = ids.map((id) => this.show(id));
    for (const m of ms) this.store.removeManifest(m.id);
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
    const { removed, rebased } = await this.disks.collect(vmId, used);
    for (const m of remaining) {
      let changed = false;
      for (const d of m.disks) {
        if (rebased.has(d.file)) {
          d.backing = rebased.get(d.file)!;
          changed = true;
        }
      }
      if (changed) this.store.rewriteManifest(m);
    }
    return removed;
  }

  verify(): Promise<VerifyReport> {
    return this.store.verify();
  }

  gc(): Promise<{ deadObjects: number; packsRewritten: number; bytesFreed: number }> {
    return this.store.gc();
  }

  /** Applies retention rules to one VM's scheduled checkpoints. With dryRun, only says what it would delete. */
  async prune(ref: string, rules: RetentionRules, opts: { dryRun?: boolean; now?: Date } = {}): Promise<{ keep: string[]; delete: string[] }> {
    const vm = this.vms.get(ref);
    const all = this.store.list(vm.id);
    const { keep, drop } = selectRetention(all, rules);
    if (!opts.dryRun && drop.length) await this.delete(drop);
    return { keep, delete: drop };
  }
}

function summary(m: Manifest): CheckpointSummary {
  return {
    id: m.id, vmId: m.vmId, vmName: m.vmName, createdAt: m.createdAt, kind: m.kind, ...(m.label ? { label: m.label } : {}),
    parent: m.parent, pauseMs: m.stats.pauseMs, durationMs: m.stats.durationMs, newBytes: m.stats.newBytes,
    diskBytes: m.disks.reduce((a, d) => a + d.bytes, 0),
  };
}

/** The retention decision, pure (exported for tests). Manual checkpoints are always kept. */
export function selectRetention(all: Pick<Manifest, 'id' | 'createdAt' | 'kind'>[], rules: RetentionRules): { keep: string[]; drop: string[] } {
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
  return { keep: all.filter((m) => keep.has(m.id)).map((m) => m.id), drop: sched.filter((m) => !keep.has(m.id)).map((m) => m.id) };
}

function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const y0 = new Date(Date.UTC(t.getUTCFullYear(), 0, 1));
  return `${t.getUTCFullYear()}-W${Math.ceil(((t.getTime() - y0.getTime()) / 86_400_000 + 1) / 7)}`;
}
