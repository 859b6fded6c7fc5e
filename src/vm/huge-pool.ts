// The host's pool of 2 MiB pages, opened to each huge-page QEMU by Oriel when it runs as root, so that every VM can
// have huge-page RAM (and millisecond checkpoint pauses, hugepages.ts) without an admin reserving a pool beforehand.
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
import {
  closeSync, constants, ftruncateSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync, writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { libcFunction } from '../host/libc.ts';
import { HUGE_PAGE_MIB, HUGE_PAGE_POOL, heldHugePages, hugePages, poolValue } from './hugepages.ts';

/** Host-wide: every Oriel process on the host takes it around a change of the pool's limit. In a folder of root's
 * own (not /run/lock or /tmp, where anyone may put a file or a link of that name first). */
export const LOCK_FILE = '/run/oriel/hugepages.lock';
const LOCK_WAIT_MS = 30_000;

/** Whether VMs that did not choose get huge pages when the server can grow the pool (ORIEL_HUGEPAGES: `auto`, the
 * default, or `off`). */
export function hugePagesDefaultFromEnv(env: NodeJS.ProcessEnv = process.env): 'auto' | 'off' {
  const v = env.ORIEL_HUGEPAGES;
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'off') return 'off';
  throw new Error(`ORIEL_HUGEPAGES is '${v}': it must be 'auto' (the default) or 'off'`);
}

/** Why no lease: `why` for anyone (the API shows it to the VM's owner: no host path, no host figure), `detail` for
 * the server's log. */
export interface Refusal {
  why: string;
  detail?: string;
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
  /** /proc/meminfo */
  meminfo: string;
}

/** Whether this server may change the pool's limit: only root may. */
export const mayLeaseHugePages = (): boolean => process.getuid?.() === 0;

const defaultHost = (): PoolHost => ({
  pool: HUGE_PAGE_POOL, lockFile: LOCK_FILE, privileged: mayLeaseHugePages(), meminfo: '/proc/meminfo',
});

/**
 * Lets one QEMU take `memoryMiB` of 2 MiB pages, raising the pool's surplus limit as needed, or says why it cannot
 * (not root, no pool, the pool busy for 30 s). The caller must `settle` the lease once its QEMU
 * has its pages, or has failed.
 */
export async function leaseHugePages(
  memoryMiB: number, host: PoolHost = defaultHost(),
): Promise<HugeLease | Refusal> {
  if (!host.privileged) return { why: 'the server does not run as root, so it cannot reserve huge pages' };
  if (!readable(`${host.pool}/nr_hugepages`)) return { why: 'the kernel has no pool of 2 MiB pages' };
  let lock: Awaited<ReturnType<typeof hostLock>>;
  try {
    lock = await hostLock(host.lockFile);
  } catch (e) {
    return { why: 'the pool\'s lock cannot be taken', detail: (e as Error).message };
  }
  if (!lock) return { why: `the pool has been busy with another VM for ${LOCK_WAIT_MS / 1000} s` };
  const done = () => {
    try {
      record(lock.fd, '');
    } finally {
      lock.unlock();
    }
  };
  try {
    giveBackUnsettled(host.pool, lock.fd);
    const need = Math.ceil(memoryMiB / HUGE_PAGE_MIB);
    const lent = Math.max(0, need - Math.max(0, hugePages(host.pool).available - heldHugePages()));
    if (lent > 0) {
      // Huge pages are never swapped: what is left must carry the host (the server, page cache, other VMs).
      const left = memAvailableMiB(host.meminfo) - lent * HUGE_PAGE_MIB;
      if (left < reserveMiB(host.meminfo)) {
        done();
        return {
          why: 'the host cannot spare that much memory for huge pages',
          detail: `the host would have ${Math.max(0, left)} MiB of memory left (it keeps ${reserveMiB(host.meminfo)})`,
        };
      }
      const before = poolValue(host.pool, 'nr_overcommit_hugepages');
      // Written down before the limit changes: a process killed before it settles leaves it for the next lease.
      record(lock.fd, `overcommit ${before}\n`);
      const limit = Math.max(before, poolValue(host.pool, 'surplus_hugepages') + lent);
      writeFileSync(`${host.pool}/nr_overcommit_hugepages`, String(limit));
    }
    let settled = false;
    return {
      lent,
      settle() {
        if (settled) return;
        settled = true;
        try {
          giveBackUnsettled(host.pool, lock.fd);
        } finally {
          done();
        }
      },
    };
  } catch (e) {
    done();
    return { why: 'the pool could not be changed', detail: (e as Error).message };
  }
}

const meminfoMiB = (file: string, key: string) =>
  Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(file, 'utf8'))?.[1] ?? 0) >> 10;
const memAvailableMiB = (file: string) => meminfoMiB(file, 'MemAvailable');
/** Memory never given to huge pages: 1 GiB, or a sixteenth of the host's if more. */
const reserveMiB = (file: string) => Math.max(1024, meminfoMiB(file, 'MemTotal') >> 4);

/** At server start: a limit a killed process left raised is put back now, not at the next lease (the host's other
 * processes could take surplus pages meanwhile). Skipped when another process holds the lock (its lease is live). */
export async function reconcileHugePool(host: PoolHost = defaultHost()): Promise<void> {
  if (!host.privileged || !readable(`${host.pool}/nr_overcommit_hugepages`)) return;
  const lock = await hostLock(host.lockFile, 0).catch(() => null);
  if (!lock) return;
  try {
    giveBackUnsettled(host.pool, lock.fd);
  } catch { /* the next lease tries again */ } finally {
    lock.unlock();
  }
}

/** Puts the overcommit limit back as the lock file says (a lease settling, or one whose process ended first). */
function giveBackUnsettled(pool: string, fd: number): void {
  const b = Buffer.alloc(64);
  const m = /^overcommit (\d+)$/m.exec(b.subarray(0, readSync(fd, b, 0, b.length, 0)).toString());
  if (m) writeFileSync(`${pool}/nr_overcommit_hugepages`, m[1]!);
  record(fd, '');
}

/** The lock file's whole content, through its descriptor. */
function record(fd: number, text: string): void {
  ftruncateSync(fd, 0);
  if (text) writeSync(fd, text, 0);
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

/** One lease at a time in this process, and flock(2) on `lockFile` for the host; polled, so the event loop never
 * blocks and a stuck holder costs a wait of `waitMs`, then null. Throws where there is no flock (no glibc) or the
 * lock's folder is not root's own. */
async function hostLock(lockFile: string, waitMs = LOCK_WAIT_MS): Promise<{ fd: number; unlock(): void } | null> {
  flock ??= libcFunction('int flock(int fd, int operation)');
  const f = flock;
  if (!f) throw new Error('flock(2) is not available (no glibc), so the pool cannot be shared safely');
  mkdirSync(dirname(lockFile), { recursive: true, mode: 0o700 });
  const dir = lstatSync(dirname(lockFile));
  if (!dir.isDirectory() || dir.uid !== process.getuid?.() || (dir.mode & 0o022) !== 0)
    throw new Error(`${dirname(lockFile)} must be a folder of this user's that nobody else may write to`);
  const fd = openSync(lockFile, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  const deadline = Date.now() + waitMs;
  while (leasedHere || (f(fd, LOCK_EX | LOCK_NB) as number) !== 0) {
    if (Date.now() > deadline) {
      closeSync(fd);
      return null;
    }
    await delay(10);
  }
  leasedHere = true;
  return {
    fd,
    unlock() {
      leasedHere = false;
      f(fd, LOCK_UN);
      closeSync(fd);
    },
  };
}
