// The host side of bench/opencl-gpa.ts: given a guest buffer as runs of guest-physical pages and the VM's RAM (a
// shared memfd of QEMU, reached through /proc/<qemu>/fd), build a host view of the buffer two ways and time them:
//   remap: one reserved address range, each run mmap'd MAP_SHARED|MAP_FIXED from the RAM file at its offset (then
//     first touches, or MAP_POPULATE, and munmap at the end of the call);
//   gather: each run copied (libc memcpy) from one mapping of the whole RAM into a host buffer.
// Both views are checked against the guest's pattern (word i = i ^ seed << 40): one word per page and the last.
// libc through koffi, as src/remoting/window.ts; addresses as uintptr_t (BigInt here).
import koffi from 'koffi';
import { closeSync, openSync, readdirSync, readlinkSync } from 'node:fs';

const PAGE = 4096n;
const PROT_NONE = 0;
const PROT_RW = 3;
const MAP_SHARED = 0x01;
const MAP_PRIVATE = 0x02;
const MAP_FIXED = 0x10;
const MAP_ANONYMOUS = 0x20;
const MAP_NORESERVE = 0x4000;
const MAP_POPULATE = 0x8000;
const MAP_FAILED = 2n ** 64n - 1n;
/** q35: RAM of 2816 MiB or more is split at 2 GiB, the rest placed at 4 GiB (QEMU hw/i386/pc_q35.c). */
const Q35_SPLIT = 0xb0000000n;

type Addr = number | bigint;
interface Libc {
  mmap(addr: Addr, len: Addr, prot: number, flags: number, fd: number, off: Addr): Addr;
  munmap(addr: Addr, len: Addr): number;
  memcpy(dst: Addr, src: Addr, len: Addr): Addr;
  memset(dst: Addr, c: number, len: Addr): Addr;
}
let libc: Libc | undefined;
function c(): Libc {
  if (libc) return libc;
  const lib = koffi.load('libc.so.6');
  const f = (proto: string) => lib.func(proto) as never;
  libc = {
    mmap: f('uintptr_t mmap(uintptr_t, size_t, int, int, int, int64_t)'),
    munmap: f('int munmap(uintptr_t, size_t)'),
    memcpy: f('uintptr_t memcpy(uintptr_t, uintptr_t, size_t)'),
    memset: f('uintptr_t memset(uintptr_t, int, size_t)'),
  };
  return libc;
}

function mmap(addr: bigint, len: bigint, prot: number, flags: number, fd: number, off: bigint): bigint {
  const p = BigInt(c().mmap(addr, len, prot, flags, fd, off));
  if (p === MAP_FAILED) throw new Error(`mmap(${len} bytes at ${off}) failed`);
  return p;
}

/** A buffer as the guest names it: runs of contiguous guest-physical pages, in order. */
export interface Run { pfn: bigint; pages: bigint }

export function parseRuns(text: string): Run[] {
  return text.trim().split('\n').map((l) => {
    const [pfn, pages] = l.split(' ');
    return { pfn: BigInt(`0x${pfn}`), pages: BigInt(`0x${pages}`) };
  });
}

/** The VM's RAM: QEMU's memory-backend-memfd, opened through /proc/<pid>/fd and mapped whole, shared. */
export class GuestRam {
  private constructor(readonly fd: number, readonly base: bigint, readonly size: bigint) {}

  static open(qemuPid: number, size: bigint): GuestRam {
    const dir = `/proc/${qemuPid}/fd`;
    const fds = readdirSync(dir).filter((n) => {
      try {
        return readlinkSync(`${dir}/${n}`).startsWith('/memfd:memory-backend-memfd');
      } catch {
        return false;
      }
    });
    if (fds.length !== 1) throw new Error(`QEMU ${qemuPid}: ${fds.length} RAM memfds, not 1 (share=on memfd RAM?)`);
    const fd = openSync(`${dir}/${fds[0]}`, 'r+');
    return new GuestRam(fd, mmap(0n, size, PROT_RW, MAP_SHARED, fd, 0n), size);
  }

  /** The RAM file's offset of a guest-physical address, checked: a guest names pages, the host must bound them. */
  offset(gpa: bigint, len: bigint): bigint {
    const low = this.size >= Q35_SPLIT ? 0x80000000n : this.size;
    const off = gpa < low ? gpa : gpa >= 1n << 32n ? gpa - (1n << 32n) + low : -1n;
    if (off < 0n || (gpa < low && gpa + len > low) || off + len > this.size) {
      throw new RangeError(`guest-physical range ${gpa.toString(16)}+${len} is not RAM`);
    }
    return off;
  }

  close(): void {
    c().munmap(this.base, this.size);
    closeSync(this.fd);
  }
}

/** Whether a host view of `bytes` holds the guest's pattern: one word per page, and the last. */
export function holdsPattern(at: bigint, bytes: bigint, seed: bigint): boolean {
  const words = new BigUint64Array(koffi.view(at, Number(bytes)) as ArrayBuffer);
  const tag = seed << 40n;
  for (let i = 0; i < words.length; i += 512) if (words[i] !== (BigInt(i) ^ tag)) return false;
  const last = words.length - 1;
  return words[last] === (BigInt(last) ^ tag);
}

export interface RemapTimes { mapUs: number; touchUs: number; populateUs: number; unmapUs: number; ok: boolean }

const us = (t0: number) => (performance.now() - t0) * 1000;

/** One remap: reserve, map every run in place (MAP_FIXED), touch a byte per page, unmap; then the same with
 * MAP_POPULATE (the kernel fills the page tables at map time). Checked on the first pass. */
export function remap(ram: GuestRam, runs: Run[], bytes: bigint, seed: bigint, check: boolean): RemapTimes {
  const lib = c();
  const offs = runs.map((r) => ram.offset(r.pfn * PAGE, r.pages * PAGE));
  const pass = (flags: number) => {
    const base = mmap(0n, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0n);
    let t0 = performance.now();
    let at = base;
    for (let i = 0; i < runs.length; i++) {
      const len = runs[i]!.pages * PAGE;
      mmap(at, len, PROT_RW, MAP_SHARED | MAP_FIXED | flags, ram.fd, offs[i]!);
      at += len;
    }
    const mapUs = us(t0);
    t0 = performance.now();
    // The first touch of each page is a fault (a kernel or device reading the buffer pays it too).
    const view = new Uint8Array(koffi.view(base, Number(bytes)) as ArrayBuffer);
    let sum = 0;
    for (let i = 0; i < view.length; i += 4096) sum += view[i]!;
    const touchUs = us(t0);
    const ok = !check || holdsPattern(base, bytes, seed);
    t0 = performance.now();
    lib.munmap(base, bytes);
    return { mapUs, touchUs, unmapUs: us(t0), ok: ok && sum >= 0 };
  };
  const plain = pass(0);
  const populated = pass(MAP_POPULATE);
  return { ...plain, populateUs: populated.mapUs };
}

export interface GatherTimes { copyUs: number; ok: boolean }

/** One gather copy of the runs into a host buffer (already faulted in, as a helper's reused buffer would be). */
export function gather(ram: GuestRam, runs: Run[], bytes: bigint, seed: bigint): GatherTimes {
  const lib = c();
  const offs = runs.map((r) => ram.offset(r.pfn * PAGE, r.pages * PAGE));
  const dst = mmap(0n, bytes, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0n);
  try {
    lib.memset(dst, 0, bytes);
    const t0 = performance.now();
    let at = dst;
    for (let i = 0; i < runs.length; i++) {
      const len = runs[i]!.pages * PAGE;
      lib.memcpy(at, ram.base + offs[i]!, len);
      at += len;
    }
    const copyUs = us(t0);
    return { copyUs, ok: holdsPattern(dst, bytes, seed) };
  } finally {
    lib.munmap(dst, bytes);
  }
}

/** The median of `n` results of `f`, by `key`. */
export function median<T>(n: number, f: () => T, key: (t: T) => number): T {
  const all = Array.from({ length: n }, f).sort((a, b) => key(a) - key(b));
  return all[n >> 1]!;
}
