// Per-user quotas: limits (a user_quotas row, else the defaults: admins unlimited, users the configured default
// quota) and what each user uses now, and the checks where a resource is taken.
//
// What counts:
// - vms: VMs the user owns.
// - memoryMiB, cpus: VMs that hold a QEMU process (starting, running, paused, stopping), their OpenCL window
//   (host shared memory the guest can fill) counted as memory. A paused guest keeps its
//   RAM, so resuming takes nothing new: start (and a restore, which starts QEMU) is where these are checked.
// - diskBytes: the provisioned (virtual) size of the user's VM disks, not what their overlays have allocated so far.
//   A guest can grow its overlay up to the virtual size at any moment, without any request Oriel could refuse; only
//   the provisioned size is known when the VM is created, can be refused then, and bounds what the disk can become
//   (as Proxmox users expect). Uploaded images (ISOs, disk images) count here too, at their announced size.
// - checkpointBytes: what the user's checkpoints hold, counted as if no one else's were in the store (the distinct
//   RAM objects their manifests name, plus the space their disk images take): the figure never depends on other
//   owners, and stays right when checkpoints are deleted (what a child still names counts under the child).
//   A checkpoint's size is known only once taken, so a new one is refused once usage has reached the limit (the
//   last one may go past it).
//
// The VM checks run inside the VM manager's admit hooks, synchronously right before the row is written (no await
// between check and take), so parallel creates or starts cannot both slip under a limit.
import { existsSync, statSync } from 'node:fs';
import type { QuotaLimits } from '../../config.ts';
import { OrielError } from '../../errors.ts';
import type { CheckpointService } from '../../checkpoint/service.ts';
import type { Db } from '../../db/database.ts';
import type { VmManager } from '../../vm/manager.ts';
import { hostMemoryMiB, type VmSpec } from '../../vm/spec.ts';
import type { VmRecord } from '../../vm/records.ts';
import type { User, Users } from '../auth/users.ts';

export type { QuotaLimits } from '../../config.ts';
export type QuotaUsage = { [K in keyof QuotaLimits]: number };

export interface QuotaView {
  user: string;
  role: User['role'];
  /** True when the user has limits of their own; false when the defaults apply. */
  custom: boolean;
  limits: QuotaLimits;
  usage: QuotaUsage;
}

/** States in which a VM's QEMU holds memory and vCPUs. */
const LIVE_STATES = new Set(['starting', 'running', 'paused', 'stopping']);
const UNLIMITED: QuotaLimits = { vms: null, memoryMiB: null, cpus: null, diskBytes: null, checkpointBytes: null };
const KEYS = Object.keys(UNLIMITED) as (keyof QuotaLimits)[];

interface Row {
  vms: number | null; memory_mib: number | null; cpus: number | null; disk_bytes: number | null;
  checkpoint_bytes: number | null;
}

export const quotaExceeded = (m: string) => new OrielError(403, `quota: ${m}`, 'quota_exceeded');

export function formatBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

export class Quotas {
  constructor(
    private readonly db: Db,
    private readonly users: Users,
    private readonly vms: VmManager,
    private readonly checkpoints: CheckpointService,
    private readonly defaults: QuotaLimits,
  ) {}

  private row(userId: string): Row | undefined {
    return this.db.prepare('SELECT * FROM user_quotas WHERE user_id = ?').get(userId) as Row | undefined;
  }

  limits(user: Pick<User, 'id' | 'role'>): { limits: QuotaLimits; custom: boolean } {
    const r = this.row(user.id);
    if (!r) return { limits: { ...(user.role === 'admin' ? UNLIMITED : this.defaults) }, custom: false };
    return {
      limits: {
        vms: r.vms, memoryMiB: r.memory_mib, cpus: r.cpus, diskBytes: r.disk_bytes, checkpointBytes: r.checkpoint_bytes,
      },
      custom: true,
    };
  }

  /** Sets limits: fields given replace the current ones (null: unlimited), the others keep their value. */
  set(user: User, patch: Partial<QuotaLimits>): QuotaView {
    const l = { ...this.limits(user).limits };
    for (const k of KEYS) if (patch[k] !== undefined) l[k] = patch[k];
    this.db
      .prepare(
        `INSERT INTO user_quotas (user_id, vms, memory_mib, cpus, disk_bytes, checkpoint_bytes, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(user_id) DO UPDATE SET vms = excluded.vms, memory_mib = excluded.memory_mib, cpus = excluded.cpus,
           disk_bytes = excluded.disk_bytes, checkpoint_bytes = excluded.checkpoint_bytes,
           updated_at = excluded.updated_at`,
      )
      .run(user.id, l.vms, l.memoryMiB, l.cpus, l.diskBytes, l.checkpointBytes, new Date().toISOString());
    return this.view(user);
  }

  /** Back to the defaults. */
  reset(user: User): QuotaView {
    this.db.prepare('DELETE FROM user_quotas WHERE user_id = ?').run(user.id);
    return this.view(user);
  }

  view(user: User): QuotaView {
    const { limits, custom } = this.limits(user);
    return { user: user.name, role: user.role, custom, limits, usage: this.usage(user.id) };
  }

  /** Everything but checkpoints (cheap: one query). */
  private vmUsage(userId: string): Omit<QuotaUsage, 'checkpointBytes'> & { list: VmRecord[] } {
    const list = this.vms.list(userId);
    const live = list.filter((v) => LIVE_STATES.has(v.state));
    return {
      list,
      vms: list.length,
      memoryMiB: live.reduce((a, v) => a + hostMemoryMiB(v.spec), 0),
      cpus: live.reduce((a, v) => a + v.spec.cpus, 0),
      diskBytes: list.reduce((a, v) => a + this.diskBytes(v), 0) + this.vms.images.bytesOf(userId),
    };
  }

  /** Provisioned size; VMs created before it was recorded count what their overlay has allocated. */
  private diskBytes(vm: VmRecord): number {
    if (vm.spec.diskBytes !== undefined) return vm.spec.diskBytes;
    const f = this.vms.paths(vm).disk;
    return vm.spec.baseDisk && existsSync(f) ? statSync(f).size : 0;
  }

  checkpointBytes(vmIds: Set<string>): number {
    return this.checkpoints.storedBytes(vmIds);
  }

  usage(userId: string): QuotaUsage {
    const { list, ...u } = this.vmUsage(userId);
    return { ...u, checkpointBytes: this.checkpointBytes(new Set(list.map((v) => v.id))) };
  }

  private limitsOf(userId: string): QuotaLimits {
    const u = this.users.get(userId);
    return u ? this.limits(u).limits : { ...this.defaults };
  }

  // ---- checks (each throws 403 quota_exceeded) ----

  /** Admit hook: a new VM of `ownerId` with `spec` (count and disk). */
  admitCreate(ownerId: string, spec: VmSpec): void {
    const l = this.limitsOf(ownerId);
    const u = this.vmUsage(ownerId);
    if (l.vms !== null && u.vms + 1 > l.vms) throw quotaExceeded(`VMs would be ${u.vms + 1} of ${l.vms} allowed`);
    const disk = u.diskBytes + (spec.diskBytes ?? 0);
    if (l.diskBytes !== null && disk > l.diskBytes) {
      throw quotaExceeded(
        `disk would be ${formatBytes(disk)} of ${formatBytes(l.diskBytes)} allowed (provisioned size of the VMs' disks)`,
      );
    }
  }

  /** Before an upload of `bytes` by `ownerId` is announced: refused with 413 (the body would be too large). */
  admitUpload(ownerId: string, bytes: number): void {
    const l = this.limitsOf(ownerId).diskBytes;
    const disk = this.vmUsage(ownerId).diskBytes + bytes;
    if (l !== null && disk > l) {
      throw new OrielError(413, `quota: disk would be ${formatBytes(disk)} of ${formatBytes(l)} allowed (VM disks and `
        + 'uploaded images)', 'quota_exceeded');
    }
  }

  /** Before a stopped VM's disk grows by `addBytes`. */
  admitGrow(vm: VmRecord, addBytes: number): void {
    const l = this.limitsOf(vm.ownerId).diskBytes;
    const disk = this.vmUsage(vm.ownerId).diskBytes + addBytes;
    if (l !== null && disk > l)
      throw quotaExceeded(`disk would be ${formatBytes(disk)} of ${formatBytes(l)} allowed (VM disks and uploaded images)`);
  }

  /** Admit hook: `vm` (stopped) is about to start (memory and vCPUs of its owner's running VMs). */
  admitStart(vm: VmRecord): void {
    this.checkRun(vm.ownerId, vm.spec, vm.id);
  }

  /** Whether `spec` may run for `ownerId` besides what runs now (`exceptVmId` not counted twice). */
  checkRun(ownerId: string, spec: Pick<VmSpec, 'memoryMiB' | 'cpus' | 'opencl' | 'openclWindowMiB'>,
    exceptVmId?: string): void {
    const l = this.limitsOf(ownerId);
    const live = this.vms.list(ownerId).filter((v) => LIVE_STATES.has(v.state) && v.id !== exceptVmId);
    const mem = live.reduce((a, v) => a + hostMemoryMiB(v.spec), 0) + hostMemoryMiB(spec);
    const cpus = live.reduce((a, v) => a + v.spec.cpus, 0) + spec.cpus;
    if (l.memoryMiB !== null && mem > l.memoryMiB)
      throw quotaExceeded(`running memory would be ${mem} MiB of ${l.memoryMiB} MiB allowed`);
    if (l.cpus !== null && cpus > l.cpus) throw quotaExceeded(`running vCPUs would be ${cpus} of ${l.cpus} allowed`);
  }

  /** Before a checkpoint of `vm` (manual or scheduled): refused once its owner's checkpoints hold the limit. */
  checkCheckpoint(vm: VmRecord): void {
    const l = this.limitsOf(vm.ownerId).checkpointBytes;
    if (l === null) return;
    const used = this.checkpointBytes(new Set(this.vms.list(vm.ownerId).map((v) => v.id)));
    if (used >= l) {
      throw quotaExceeded(
        `checkpoint storage is ${formatBytes(used)} of ${formatBytes(l)} allowed: delete checkpoints to take new ones`,
      );
    }
  }

  /** Before a restore as a new VM of `ownerId` like `src`: count, disk and (it will run) memory and vCPUs. The admit
   * hooks check again when the VM is created and started. */
  checkRestoreAs(ownerId: string, src: VmRecord): void {
    this.admitCreate(ownerId, src.spec);
    this.checkRun(ownerId, src.spec);
  }
}
