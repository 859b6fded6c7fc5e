// Huge-page guest RAM: a hugetlb memfd of 2 MiB pages, from the kernel's pool, which a root server opens to each QEMU
// itself (huge-pool.ts) and an admin may reserve (as for Proxmox's `hugepages: 2`). What it buys:
// QEMU 7.2's background snapshot (a live snapshot of RAM) walks guest RAM page by page inside the VM's pause
// (populate, write-protect) and lifts the protection page by page; with 4 KiB pages that is 524,288 entries at
// 2 GiB and tens of ms of pause, with 2 MiB pages 1,024 entries and a few ms.
// The 2 MiB pool is read from sysfs, not /proc/meminfo: meminfo's HugePages_* count only the host's default size,
// which need not be 2 MiB.
import { readFileSync } from 'node:fs';
import { unprocessable } from '../errors.ts';

export const HUGE_PAGE_MIB = 2;
/** The kernel's pool of 2 MiB pages: nr_hugepages (reserved; writable by root), free_hugepages, resv_hugepages. */
export const HUGE_PAGE_POOL = '/sys/kernel/mm/hugepages/hugepages-2048kB';

export interface HugePages {
  /** 2 MiB pages the host has reserved in all. */
  total: number;
  /** Free and not promised to a mapping already (free − reserved for mappings). */
  available: number;
}

/** One figure of the pool (`nr_hugepages`, `surplus_hugepages`, ...); throws where there is no such pool. */
export const poolValue = (pool: string, name: string): number => Number(readFileSync(`${pool}/${name}`, 'utf8'));

export function hugePages(pool = HUGE_PAGE_POOL): HugePages {
  const read = (name: string) => {
    try {
      return poolValue(pool, name);
    } catch {
      return 0; // no such pool: a kernel without 2 MiB huge pages
    }
  };
  return { total: read('nr_hugepages'), available: read('free_hugepages') - read('resv_hugepages') };
}

let held = 0;
/** Pages promised to restores of this process (holdHugePages), which the pool shows as free. */
export const heldHugePages = (): number => held;
/** Keeps `memoryMiB` of huge pages out of other VMs' reach while they are free in the pool but promised: a lazy
 * restore's QEMU gives its pages back to the pool (postcopy's discard) and takes them again as they arrive. Returns the
 * release (idempotent). */
export function holdHugePages(memoryMiB: number): () => void {
  const n = Math.ceil(memoryMiB / HUGE_PAGE_MIB);
  held += n;
  let done = false;
  return () => {
    if (!done) held -= n;
    done = true;
  };
}

/** Throws a 422 that says what to do when the host cannot give `memoryMiB` of huge pages to a VM now. */
export function checkHugePages(vmName: string, memoryMiB: number, hp = hugePages(), why?: string): void {
  const need = Math.ceil(memoryMiB / HUGE_PAGE_MIB);
  const available = Math.max(0, hp.available - held);
  if (available >= need) return;
  const total = hp.total + need - available;
  throw unprocessable(
    `cannot start VM '${vmName}': it needs ${need} free huge pages of ${HUGE_PAGE_MIB} MiB and the host has ` +
      `${available} (of ${hp.total} reserved); reserve them as root: echo ${total} > ${HUGE_PAGE_POOL}/nr_hugepages ` +
      `(or sysctl vm.nr_hugepages=${total} where 2 MiB is the default size; in /etc/sysctl.d/ for good), or start the VM without hugepages` +
      (why ? ` (the server could not reserve them itself: ${why})` : ''),
  );
}
