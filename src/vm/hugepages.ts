// Huge-page guest RAM. A VM with `hugepages` gets its RAM from a hugetlb memfd of 2 MiB pages, which the host must
// have reserved (`sysctl vm.nr_hugepages=N`, as for Proxmox's `hugepages: 2`): Oriel does not change the host's
// memory settings. What it buys: QEMU 7.2's background snapshot, which checkpoints build on, walks guest RAM page
// by page twice (populate, write-protect) and lifts the protection page by page; with 4 KiB pages that is 524,288
// entries at 2 GiB and tens of ms of pause, with 2 MiB pages 1,024 entries and ~1 ms (src/checkpoint/README.md).
import { readFileSync } from 'node:fs';
import { unprocessable } from '../errors.ts';

export const HUGE_PAGE_MIB = 2;

export interface HugePages {
  /** Huge pages of HUGE_PAGE_MIB the host has reserved in all. */
  total: number;
  /** Free and not promised to a mapping already (HugePages_Free − HugePages_Rsvd). */
  available: number;
  /** The host's default huge page size in KiB (Hugepagesize). */
  sizeKiB: number;
}

export function hugePages(meminfo = readFileSync('/proc/meminfo', 'utf8')): HugePages {
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(meminfo)?.[1] ?? 0);
  return { total: field('HugePages_Total'), available: field('HugePages_Free') - field('HugePages_Rsvd'), sizeKiB: field('Hugepagesize') };
}

/** Throws a 422 that says what to do when the host cannot give `memoryMiB` of huge pages to a VM now. */
export function checkHugePages(vmName: string, memoryMiB: number, hp = hugePages()): void {
  const need = Math.ceil(memoryMiB / HUGE_PAGE_MIB);
  if (hp.available >= need) return;
  const how = `reserve them as root: sysctl vm.nr_hugepages=${hp.total + need - Math.max(0, hp.available)}` +
    ' (or in /etc/sysctl.d/ for good), or start the VM without hugepages';
  throw unprocessable(`cannot start VM '${vmName}': it needs ${need} free huge pages of ${HUGE_PAGE_MIB} MiB and the host has ` +
    `${Math.max(0, hp.available)} (of ${hp.total} reserved); ${how}`);
}
