// libc for the few calls Node does not offer (koffi, loaded once for the whole helper and server side): the window's
// mmap (window.ts) and the unix socket calls (unix.ts).
import koffi from 'koffi';

let lib: ReturnType<typeof koffi.load> | undefined;

/** libc.so.6, loaded on first use. */
export function libc(): ReturnType<typeof koffi.load> {
  lib ??= koffi.load('libc.so.6');
  return lib;
}
