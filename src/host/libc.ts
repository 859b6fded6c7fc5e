// libc for the host-process calls Node does not offer (koffi, loaded once): process_madvise and pidfd_open
// (huge-pages-again.ts), fallocate (memfd-fill.ts). null where it cannot be loaded.
import koffi from 'koffi';

export type CFunction = ReturnType<ReturnType<typeof koffi.load>['func']>;

let lib: ReturnType<typeof koffi.load> | null | undefined;

/** A libc.so.6 function by its C prototype; null without glibc or without that function (e.g. before 2.36). */
export function libcFunction(prototype: string): CFunction | null {
  try {
    lib ??= koffi.load('libc.so.6');
    return lib.func(prototype);
  } catch {
    return null;
  }
}

const NAMES: Record<number, string> = {
  1: 'EPERM', 3: 'ESRCH', 11: 'EAGAIN', 12: 'ENOMEM', 22: 'EINVAL', 28: 'ENOSPC', 38: 'ENOSYS',
};
/** An errno value's name (koffi.errno() after a call, or as a callback of an async call got it). */
export const errnoName = (n: number): string => NAMES[n] ?? `errno ${n}`;
/** The calling thread's errno now. */
export const lastErrno = (): number => koffi.errno();
