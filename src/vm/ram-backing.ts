// What a VM's guest RAM is backed by, decided at each start: 2 MiB huge pages (a hugetlb memfd) or ordinary memory.
// A VM's `hugepages` choice: true (always: the start fails without them), false (never), or unset (auto: huge pages
// when the server can reserve them, huge-pool.ts, and ORIEL_HUGEPAGES is not `off`; ordinary memory otherwise).
//
// Both backings name the RAM block `pc.ram` (q35's default-ram-id, which QEMU's docs give as the id of a memory
// backend that must migrate like the default RAM), so a checkpoint taken on either restores onto either. Huge-page
// VMs of earlier versions called it `ram0`: a restore names the block as its checkpoint does.
import { HUGE_PAGE_MIB, checkHugePages } from './hugepages.ts';
import { hugePagesDefaultFromEnv, leaseHugePages, mayLeaseHugePages, type HugeLease } from './huge-pool.ts';
import type { QmpClient } from './qmp/index.ts';
import type { VmSpec } from './spec.ts';

export const RAM_ID = 'pc.ram';
const EARLIER_HUGE_RAM_ID = 'ram0';

export interface RamBacking {
  huge: boolean;
  /** The memory backend's id: the RAM block's name in a migration stream. */
  id: string;
  /** Why a VM that did not choose got ordinary memory (the API's hugepagesWhy). */
  why?: string;
}

export interface RamChoice extends RamBacking {
  /** Held from before QEMU starts until it has its pages (the VM manager settles it). */
  lease?: HugeLease;
  /** What the server log says of `why`. */
  detail?: string;
}

const wantsHuge = (spec: VmSpec) =>
  spec.hugepages ?? (hugePagesDefaultFromEnv() === 'auto' && spec.memoryMiB % HUGE_PAGE_MIB === 0);

/** The backing for a start of `spec` now; throws (422) for a VM that must have huge pages and cannot. */
export async function chooseRam(vmName: string, spec: VmSpec, id = RAM_ID): Promise<RamChoice> {
  if (!wantsHuge(spec)) return { huge: false, id };
  const lease = await leaseHugePages(spec.memoryMiB);
  if (!('why' in lease)) return { huge: true, id, lease };
  if (spec.hugepages === undefined) return { huge: false, id, why: lease.why, detail: lease.detail ?? lease.why };
  checkHugePages(vmName, spec.memoryMiB, undefined, lease.why); // a pool an admin reserved, or a 422 that says why
  return { huge: true, id };
}

/** What chooseRam will most likely pick, without reserving anything (a restore orders its pages before QEMU starts):
 * an auto VM gets huge pages only through the server's own lease (root), never from a pool an admin reserved. */
export function expectHugeRam(spec: VmSpec): boolean {
  return wantsHuge(spec) && (mayLeaseHugePages() || spec.hugepages === true);
}

/** The RAM block's name in a checkpoint's stream. */
export function ramIdOf(blocks: { id: string }[]): string {
  return blocks.some((b) => b.id === EARLIER_HUGE_RAM_ID) ? EARLIER_HUGE_RAM_ID : RAM_ID;
}

/** The backing of a QEMU found running at server start: its RAM backend's `hugetlb` property (a memfd has one). */
export async function ramOfQemu(qmp: QmpClient): Promise<RamBacking> {
  for (const id of [RAM_ID, EARLIER_HUGE_RAM_ID]) {
    try {
      const huge = await qmp.execute('qom-get', { path: `/objects/${id}`, property: 'hugetlb' });
      return { huge: huge === true, id };
    } catch { /* no such object, or no such property (ordinary memory) */ }
  }
  return { huge: false, id: RAM_ID };
}
