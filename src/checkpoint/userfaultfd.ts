// Can QEMU use userfaultfd here? A lazy restore (postcopy) needs it on the destination: QEMU 7.2 opens it without
// UFFD_USER_MODE_ONLY (migration/postcopy-ram.c), which Linux allows to a process with CAP_SYS_PTRACE, or to anyone
// when `vm.unprivileged_userfaultfd` is 1 (default 0; Documentation/admin-guide/sysctl/vm.rst). QEMU runs as the
// server's user with its capabilities (VmManager spawns it directly), so the server's own credentials decide.
// QEMU checks again, for real, when the destination's postcopy-ram capability is set
// (`postcopy_ram_supported_by_host`): restore.ts falls back to an eager restore on either refusal.
import { readFileSync } from 'node:fs';

const CAP_SYS_PTRACE = 19;

export interface UffdHost {
  platform: string;
  /** CapEff from /proc/self/status (hex), or undefined if unreadable. */
  capEff?: string;
  /** /proc/sys/vm/unprivileged_userfaultfd, or undefined when the file is missing (kernel without userfaultfd). */
  unprivileged?: string;
}

export function readUffdHost(): UffdHost {
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return undefined;
    }
  };
  return {
    platform: process.platform,
    capEff: read('/proc/self/status')?.match(/^CapEff:\s*([0-9a-f]+)/m)?.[1],
    unprivileged: read('/proc/sys/vm/unprivileged_userfaultfd')?.trim(),
  };
}

/** Why QEMU cannot use userfaultfd on this host, or null if it can (as far as the host's settings tell). */
export function userfaultfdUnusable(host: UffdHost = readUffdHost()): string | null {
  if (host.platform !== 'linux') return `userfaultfd is Linux-only (this host runs ${host.platform})`;
  if (host.unprivileged === undefined)
    return 'the kernel has no userfaultfd (/proc/sys/vm/unprivileged_userfaultfd is missing)';
  if (host.unprivileged === '1') return null;
  const caps = host.capEff !== undefined ? BigInt(`0x${host.capEff}`) : 0n;
  if ((caps >> BigInt(CAP_SYS_PTRACE)) & 1n) return null;
  return (
    'QEMU may not use userfaultfd: it runs without CAP_SYS_PTRACE and vm.unprivileged_userfaultfd is 0 ' +
    '(set it to 1, or run the server as root)'
  );
}
