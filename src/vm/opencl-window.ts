// The OpenCL zero-copy window's file (spec.opencl; in /dev/shm, paths.ts): made afresh, 0600, before QEMU starts
// (QEMU would create a missing one 0644; a new file each start also detaches a helper of an earlier run still mapping
// the old one), removed when QEMU is gone (manager.ts).
import { closeSync, ftruncateSync, openSync, rmSync } from 'node:fs';
import type { VmPaths } from './paths.ts';
import { DEFAULT_OPENCL_WINDOW_MIB, type VmSpec } from './spec.ts';

export function prepareOpenclWindow(spec: VmSpec, paths: VmPaths): void {
  rmSync(paths.openclWindow, { force: true });
  if (!spec.opencl) return;
  const fd = openSync(paths.openclWindow, 'wx', 0o600);
  try {
    // Sparse: only the pages the guest touches take room.
    ftruncateSync(fd, (spec.openclWindowMiB ?? DEFAULT_OPENCL_WINDOW_MIB) * 1024 * 1024);
  } finally {
    closeSync(fd);
  }
}
