// Makes a process's large anonymous mapping transparent huge pages again, from outside it: process_madvise(2) with
// MADV_COLLAPSE (Linux 6.1+, glibc 2.36+; the caller needs CAP_SYS_NICE over the process, i.e. root here). The
// checkpoint code uses it on QEMU's guest RAM: a background snapshot lifts its write protection 4 KiB at a time, which
// splits every huge page mapping, and the next snapshot's populate loop and write protection then walk 524,288 page
// table entries at 2 GiB inside the guest's pause instead of 1,024 (src/checkpoint/README.md). Collapsing keeps the
// pages' contents; the kernel refuses ranges under userfaultfd (a snapshot or a lazy restore in progress).
import { readFileSync } from 'node:fs';
import koffi from 'koffi';

const MADV_COLLAPSE = 25; // include/uapi/asm-generic/mman-common.h
const HUGE = 2 << 20;
/** One process_madvise call covers at most MAX_RW_COUNT (2 GiB less a page) bytes: smaller steps, each a short
 * syscall on a worker thread. */
const STEP = 256 << 20;

interface Libc {
  pidfdOpen: (pid: number, flags: number) => number;
  processMadvise: ReturnType<ReturnType<typeof koffi.load>['func']>;
  close: (fd: number) => number;
}
let libc: Libc | null | undefined;
function load(): Libc | null {
  if (libc !== undefined) return libc;
  try {
    const lib = koffi.load('libc.so.6');
    libc = {
      pidfdOpen: lib.func('int pidfd_open(int pid, unsigned int flags)'),
      processMadvise: lib.func('long process_madvise(int pidfd, void *iov, size_t n, int advice, unsigned int flags)'),
      close: lib.func('int close(int fd)'),
    };
  } catch {
    libc = null; // not glibc 2.36+: nothing to do
  }
  return libc;
}

/** The anonymous, writable, THP-eligible mappings of `pid` of exactly `bytes` (QEMU maps each RAM block alone). */
export function ramMappings(pid: number, bytes: number): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  let cur: { start: number; end: number; anon: boolean } | undefined;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      cur = { start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), anon: m[3]!.startsWith('rw') && m[4] === '' };
      continue;
    }
    if (cur?.anon && /^THPeligible:\s+1/.test(line) && cur.end - cur.start === bytes) out.push(cur);
  }
  return out;
}

/** What a collapse did: `bytes` now in huge pages; `refused`, the kernel's reason for the steps it refused (EINVAL:
 * some ranges cannot be collapsed now, e.g. pages a lazy restore placed; EAGAIN/ENOMEM: no huge pages to be had). */
export type CollapseResult = { bytes: number; ms: number; refused: string | null } | { skipped: string };

/** Collapses the mappings of `pid` that are `bytes` long (guest RAM) into huge pages; never throws. */
export async function collapseToHugePages(pid: number, bytes: number): Promise<CollapseResult> {
  const c = load();
  if (!c) return { skipped: 'libc has no process_madvise (glibc 2.36+)' };
  const t0 = Date.now();
  let ranges: { start: number; end: number }[];
  try {
    ranges = ramMappings(pid, bytes);
  } catch (e) {
    return { skipped: (e as Error).message };
  }
  if (ranges.length === 0) return { skipped: 'no mapping of the RAM size eligible for huge pages' };
  const fd = c.pidfdOpen(pid, 0);
  if (fd < 0) return { skipped: `pidfd_open failed (${errno()})` };
  let done = 0;
  let refused: string | null = null;
  try {
    for (const r of ranges) {
      for (let at = Math.ceil(r.start / HUGE) * HUGE; at + HUGE <= r.end; at += STEP) {
        const iov = Buffer.alloc(16);
        iov.writeBigUInt64LE(BigInt(at), 0);
        iov.writeBigUInt64LE(BigInt(Math.min(STEP, Math.floor((r.end - at) / HUGE) * HUGE)), 8);
        const n = await new Promise<number>((ok, fail) =>
          c.processMadvise.async(fd, iov, 1, MADV_COLLAPSE, 0, (e: Error | null, v: number) => (e ? fail(e) : ok(v))));
        if (n >= 0) {
          done += n;
          continue;
        }
        // errno is the worker thread's: one huge page of the same step, again on this thread, says why.
        iov.writeBigUInt64LE(BigInt(HUGE), 8);
        refused = c.processMadvise(fd, iov, 1, MADV_COLLAPSE, 0) < 0 ? errno() : 'some of its huge pages';
        if (refused === 'EPERM' || refused === 'ESRCH' || refused === 'ENOSYS') return { skipped: refused };
      }
    }
  } catch (e) {
    return { skipped: (e as Error).message };
  } finally {
    c.close(fd);
  }
  return { bytes: done, ms: Date.now() - t0, refused };
}

const ERRNO: Record<number, string> = { 1: 'EPERM', 3: 'ESRCH', 11: 'EAGAIN', 12: 'ENOMEM', 22: 'EINVAL', 38: 'ENOSYS' };
function errno(): string {
  const n = koffi.errno();
  return ERRNO[n] ?? `errno ${n}`;
}
