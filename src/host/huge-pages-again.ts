// Makes a process's large anonymous mapping transparent huge pages again, from outside it: process_madvise(2) with
// MADV_COLLAPSE (Linux 6.1+, glibc 2.36+; the caller needs CAP_SYS_NICE over the process, i.e. root here). The
// checkpoint code uses it on QEMU's guest RAM: a background snapshot lifts its write protection 4 KiB at a time, which
// splits every huge page mapping, and the next snapshot's populate loop and write protection then walk 524,288 page
// table entries at 2 GiB inside the guest's pause instead of 1,024 (src/checkpoint/README.md). Collapsing keeps the
// pages' contents; the kernel refuses ranges under userfaultfd (a snapshot or a lazy restore in progress).
import { readFileSync } from 'node:fs';
import { errnoName as errno, lastErrno, libcFunction, type CFunction } from './libc.ts';

const MADV_COLLAPSE = 25; // include/uapi/asm-generic/mman-common.h
const HUGE = 2 << 20;
/** One call per 32 MiB: each is a short syscall on one of libuv's few worker threads, and a collapse can be stopped
 * between two of them (a call covers at most MAX_RW_COUNT, 2 GiB less a page, anyway). */
const STEP = 32 << 20;

interface Libc {
  pidfdOpen: CFunction;
  processMadvise: CFunction;
  close: CFunction;
}
let libc: Libc | null | undefined;
/** Set once the host has shown it cannot collapse at all (no wrapper, no permission, no system call). */
let unsupported: string | undefined;

function load(): Libc | null {
  if (libc !== undefined) return libc;
  const [pidfdOpen, processMadvise, close] = [
    'int pidfd_open(int pid, unsigned int flags)',
    'long process_madvise(int pidfd, void *iov, size_t n, int advice, unsigned int flags)',
    'int close(int fd)',
  ].map(libcFunction);
  libc = pidfdOpen && processMadvise && close ? { pidfdOpen, processMadvise, close } : null;
  if (!libc) unsupported = 'libc has no process_madvise (glibc 2.36+)';
  return libc;
}

/** The anonymous, writable, private mappings of `pid` of exactly `bytes` (QEMU maps each RAM block alone), from
 * /proc/PID/maps (smaps would walk every page table entry). */
export function ramMappings(pid: number, bytes: number): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) rw-p \S+ \S+ \S+\s*$/.exec(line);
    if (!m) continue;
    const start = parseInt(m[1]!, 16), end = parseInt(m[2]!, 16);
    if (end - start === bytes) out.push({ start, end });
  }
  return out;
}

/** What a collapse did: `bytes` now in huge pages; `refused`, the kernel's reason for the steps it refused (EINVAL:
 * some ranges cannot be collapsed now, e.g. pages a lazy restore placed; EAGAIN/ENOMEM: no huge pages to be had);
 * `stopped` if told to stop before the end. */
export type CollapseResult = { bytes: number; ms: number; refused: string | null; stopped: boolean }
  | { skipped: string };

/** Collapses the mappings of `pid` that are `bytes` long (guest RAM) into huge pages; never throws. `stop` is asked
 * between steps. */
export async function collapseToHugePages(pid: number, bytes: number, stop = () => false): Promise<CollapseResult> {
  const c = load();
  if (!c || unsupported) return { skipped: unsupported ?? 'no libc' };
  const t0 = Date.now();
  const fd = c.pidfdOpen(pid, 0); // first: the mappings read below are then this very process's
  if (fd < 0) return { skipped: `pidfd_open failed (${errno(lastErrno())})` };
  let done = 0;
  let refused: string | null = null;
  try {
    const ranges = ramMappings(pid, bytes);
    if (ranges.length === 0) return { skipped: 'no private writable mapping of the RAM size' };
    for (const r of ranges) {
      for (let at = Math.ceil(r.start / HUGE) * HUGE; at + HUGE <= r.end; at += STEP) {
        if (stop()) return { bytes: done, ms: Date.now() - t0, refused, stopped: true };
        const iov = Buffer.alloc(16); // kept alive by this frame until the call is back
        iov.writeBigUInt64LE(BigInt(at), 0);
        iov.writeBigUInt64LE(BigInt(Math.min(STEP, Math.floor((r.end - at) / HUGE) * HUGE)), 8);
        // koffi hands the worker thread's errno back to the callback.
        const [n, e] = await new Promise<[number, number]>((ok, fail) =>
          c.processMadvise.async(fd, iov, 1, MADV_COLLAPSE, 0, (err: Error | null, v: number) =>
            (err ? fail(err) : ok([v, lastErrno()]))));
        if (n >= 0) {
          done += n;
          continue;
        }
        refused = errno(e);
        if (['EPERM', 'ENOSYS'].includes(refused)) {
          unsupported = `process_madvise(MADV_COLLAPSE) refused: ${refused}`; // the same for every VM from now on
          return { skipped: unsupported };
        }
        if (refused === 'ESRCH') return { skipped: 'the process ended' };
        // Refused from the first step: the whole mapping is (a kernel before 6.1, pages a lazy restore placed).
        if (refused === 'EINVAL' && done === 0) break;
      }
    }
  } catch (e) {
    return { skipped: (e as Error).message };
  } finally {
    c.close(fd);
  }
  return { bytes: done, ms: Date.now() - t0, refused, stopped: false };
}
