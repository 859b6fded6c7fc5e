// Facts about a QEMU process that outlives the server that started it: is it alive, is it ours, its log tail.
import { existsSync, readFileSync } from 'node:fs';
import { lastBytes } from './serial-log.ts';

/** True if `pid` runs. A zombie counts as dead: a QEMU re-attached after a server restart is no child of ours,
 * and if its parent died, nothing may reap it for a while, yet kill(pid, 0) still succeeds on it. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // /proc/PID/stat: "pid (comm) state ..."; comm may hold spaces or parentheses, so read after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/** True if `pid` is a live process whose command line names `marker` (a path only that VM's QEMU uses),
 * so a recycled pid from a stale pidfile is never mistaken for the VM. */
export function isOurQemu(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => a.includes(marker));
  } catch {
    return false;
  }
}

export function readPidfile(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const pid = Number(readFileSync(path, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The last `lines` lines of a (possibly large) log file, reading only its end. */
export function tail(path: string, lines = 20, maxBytes = 64 * 1024): string {
  // Across a rotated predecessor (serial-log.ts), so the tail of a log just emptied by its cap is still there.
  const buf = lastBytes(path, maxBytes);
  return buf.toString('utf8').split('\n').filter((l, i, a) => l !== '' || i < a.length - 1).slice(-lines).join('\n');
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export async function waitUntil(cond: () => boolean, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond();
}
