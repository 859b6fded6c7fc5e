// The host's pool of 2 MiB pages, grown and given back by Oriel when it runs as root, so that every VM can have
// huge-page RAM (and millisecond checkpoint pauses, hugepages.ts) without an admin reserving a pool beforehand.
//
// How (the kernel's hugetlb pool, Documentation/admin-guide/mm/hugetlbpage.rst): before a huge-page QEMU starts,
// Oriel raises nr_overcommit_hugepages by what the free pool lacks. QEMU's memfd mapping then reserves "surplus"
// pages, which the kernel takes from ordinary memory as the mapping is made and gives back as soon as QEMU lets go
// of them: QEMU's exit, crash or kill returns them, with no step of Oriel's. Once QEMU holds its pages, Oriel puts
// the limit back as it was. (Raising nr_hugepages instead would turn the surplus pages of running VMs into
// persistent ones, which stay in the pool after those VMs end.) Memory too fragmented for 2 MiB pages makes QEMU's
// start fail; an auto VM then starts on ordinary memory (manager.ts).
//
// A lease is exclusive on the host, from raising the limit to putting it back (in the process, and by flock on
// LOCK_FILE, since several Oriel processes may share a host): while it is raised, any mapping may take surplus
// pages. A lazy restore holds its lease until it has filled its memfd again (checkpoint/restore.ts): postcopy's
// discard gives its pages back, and it takes new ones as pages arrive. The lock file says what to put back, for the
// next lease, if the process ends before it settles.
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { libcFunction } from '../host/libc.ts';
import { HUGE_PAGE_MIB, HUGE_PAGE_POOL, hugePages } from './hugepages.ts';

/** Host-wide: every Oriel process on the host takes it around a change of the pool's limit. */
export const LOCK_FILE = '/run/lock/oriel-hugepages.lock';
const LOCK_WAIT_MS = 30_000;

/** Whether VMs that did not choose get huge pages when the server can grow the pool (ORIEL_HUGEPAGES: `auto`, the
 * default, or `off`). */
export function hugePagesDefaultFromEnv(env: NodeJS.ProcessEnv = process.env): 'auto' | 'off' {
  const v = env.ORIEL_HUGEPAGES;
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'off') return 'off';
  throw new Error(`ORIEL_HUGEPAGES is '${v}': it must be 'auto' (the default) or 'off'`);
}

export interface HugeLease {
  /** Surplus pages this lease allows beyond the free pool (the limit is put back on settle). */
  readonly lent: number;
  /** QEMU holds its pages now (or failed, or is gone): gives back what was lent, lets the next lease go. Idempotent. */
  settle(): void;
}

export interface PoolHost {
  /** The sysfs folder of the 2 MiB pool. */
  pool: string;
  lockFile: string;
  /** Whether this process may change the pool (root). */
  privileged: boolean;
}

const defaultHost = (): PoolHost => ({
  pool: HUGE_PAGE_POOL, lockFile: LOCK_FILE, privileged: process.getuid?.() === 0,
});

/**
 * Lets one QEMU take `memoryMiB` of 2 MiB pages, raising the pool's surplus limit as needed, or says why it cannot
 * (not root, no pool, the pool busy for 30 s). The caller must `settle` the lease once its QEMU
 * has its pages, or has failed.
 */
export async function leaseHugePages(
  memoryMiB: number, host: PoolHost = defaultHost(),
): Promise<HugeLease | { why: string }> {
  if (!host.privileged) return { why: 'the server does not run as root, so it cannot reserve huge pages' };
  if (!readable(`${host.pool}/nr_hugepages`)) return { why: 'the kernel has no pool of 2 MiB pages' };
  const lock = await hostLock(host.lockFile);
  if (!lock) return { why: `the pool has been busy with another VM for ${LOCK_WAIT_MS / 1000} s` };
  const done = () => {
    try {
      writeFileSync(lock.file, '');
    } finally {
      lock.unlock();
    }
  };
  try {
    giveBackUnsettled(host.pool, lock.file);
    const need = Math.ceil(memoryMiB / HUGE_PAGE_MIB);
    const lent = Math.max(0, need - hugePages(host.pool).available);
    if (lent > 0) {
      const before = read(host.pool, 'nr_overcommit_hugepages');
      // Written down before the limit changes: a process killed before it settles leaves it for the next lease.
      writeFileSync(lock.file, `overcommit ${before}\n`);
      const limit = Math.max(before, read(host.pool, 'surplus_hugepages') + lent);
      writeFileSync(`${host.pool}/nr_overcommit_hugepages`, String(limit));
    }
    let settled = false;
    return {
      lent,
      settle() {
        if (settled) return;
        settled = true;
        try {
          giveBackUnsettled(host.pool, lock.file);
        } finally {
          done();
        }
      },
    };
  } catch (e) {
    done();
    return { why: `the pool could not be changed: ${(e as Error).message}` };
  }
}

const read = (pool: string, name: string) => Number(readFileSync(`${pool}/${name}`, 'utf8'));

/** Puts the overcommit limit back as the lock file says (a lease settling, or one whose process ended first). */
function giveBackUnsettled(pool: string, lockFile: string): void {
  const m = /^overcommit (\d+)$/m.exec(readFileSync(lockFile, 'utf8'));
  if (m) writeFileSync(`${pool}/nr_overcommit_hugepages`, m[1]!);
  writeFileSync(lockFile, '');
}

function readable(file: string): boolean {
  try {
    readFileSync(file, 'utf8');
    return true;
  } catch {
    return false;
  }
}

const LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
let flock: ReturnType<typeof libcFunction> | undefined;
let leasedHere = false;

/** One lease at a time in this process, and flock(2) on `file` for the host; polled, so the event loop never blocks
 * and a stuck holder costs a wait of LOCK_WAIT_MS, then null. Without flock (no glibc), the process's own flag. */
async function hostLock(lockFile: string): Promise<{ file: string; unlock(): void } | null> {
  flock ??= libcFunction('int flock(int fd, int operation)');
  const f = flock;
  let fd: number;
  let file = lockFile;
  try {
    fd = openSync(file, 'a', 0o600);
  } catch {
    file = lockFile.replace(/^\/run\/lock\//, '/tmp/');
    fd = openSync(file, 'a', 0o600);
  }
  const deadline = Date.now() + LOCK_WAIT_MS;
  while (leasedHere || (f && (f(fd, LOCK_EX | LOCK_NB) as number) !== 0)) {
    if (Date.now() > deadline) {
      closeSync(fd);
      return null;
    }
    await delay(10);
  }
  leasedHere = true;
  return {
    file,
    unlock() {
      leasedHere = false;
      f?.(fd, LOCK_UN);
      closeSync(fd);
    },
  };
}
