// The zero-copy window of one VM: a file in the VM's 0700 folder that QEMU maps as the RAM of an ivshmem-plain
// device (BAR2 in the guest) and the helper maps too (MAP_SHARED, libc mmap through koffi). The guest ICD places
// buffers in it and names them by {offset, length}; the helper makes them host buffers with CL_MEM_USE_HOST_PTR at
// base + offset. Every range is checked here, in BigInt (no wrap-around), before a host pointer is derived.
// Why a window and not the guest-physical pages of ordinary buffers: docs/opencl-zero-copy.md (bench/opencl-gpa.ts).
import koffi from 'koffi';
import { libc as loadLibc } from './libc.ts';
import { closeSync, fstatSync, openSync } from 'node:fs';

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const MAP_FAILED = 2n ** 64n - 1n;
/** The largest window a helper maps (the API allows up to 4 GiB). */
export const MAX_WINDOW = 2n ** 32n;

interface Libc {
  mmap: (addr: null, len: bigint, prot: number, flags: number, fd: number, off: bigint) => bigint | null;
  munmap: (addr: bigint, len: bigint) => number;
}
let libc: Libc | undefined;
function mm(): Libc {
  if (libc) return libc;
  const lib = loadLibc();
  libc = {
    mmap: lib.func('void *mmap(void *, size_t, int, int, int, int64_t)') as unknown as Libc['mmap'],
    munmap: lib.func('int munmap(void *, size_t)') as unknown as Libc['munmap'],
  };
  return libc;
}

export class Window {
  private constructor(readonly base: bigint, readonly size: bigint) {}

  /** Maps the window file whole (its size is the window's); throws when it cannot. */
  static open(file: string): Window {
    const fd = openSync(file, 'r+');
    try {
      return Window.map(fd, file);
    } finally {
      closeSync(fd);
    }
  }

  /** Maps the window whole through a descriptor open for reading and writing (the helper's fd 3); the descriptor
   * stays the caller's. */
  static map(fd: number, name = `fd ${fd}`): Window {
    const size = BigInt(fstatSync(fd).size);
    if (size === 0n || size > MAX_WINDOW) throw new Error(`window ${name}: size ${size} out of range`);
    const base = mm().mmap(null, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n);
    if (base === null || BigInt(base) === MAP_FAILED) throw new Error(`window ${name}: mmap failed`);
    return new Window(BigInt(base), size);
  }

  /** Whether [offset, offset + len) lies inside the window (len > 0). */
  contains(offset: bigint, len: bigint): boolean {
    return offset >= 0n && len > 0n && offset < this.size && len <= this.size - offset;
  }

  /** The host address of a checked range. */
  at(offset: bigint, len: bigint): bigint {
    if (!this.contains(offset, len)) throw new RangeError('outside the window');
    return this.base + offset;
  }

  /** A view of a checked range (tests and the bench read and write through it). */
  view(offset: bigint, len: number): Buffer {
    return Buffer.from(koffi.view(this.at(offset, BigInt(len)), len));
  }

  close(): void {
    mm().munmap(this.base, this.size);
  }
}
