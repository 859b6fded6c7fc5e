// Facts about processes on this host that outlive the process which started them (QEMU, capture workers, the
// holder of a lock file): is a pid alive, is it still the process we mean, what pid a pidfile names. The one place
// that answers "is this pid ours?": a pid read back later may have been recycled by an unrelated process, so a live
// pid counts only if its command line names a marker only our process uses (a socket or job file path).
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** True if `pid` runs. A zombie counts as dead once its threads are gone too: a process re-attached after a
 * restart is no child of ours, and if its parent died, nothing may reap it for a while, yet kill(pid, 0) still
 * succeeds on it. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // /proc/PID/stat: "pid (comm) state ..."; comm may hold spaces or parentheses, so read after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z') return true;
    // A zombie leader whose other threads still exit (a killed QEMU: its vCPU and I/O threads) still holds the
    // process's files, and so its disk image's lock: gone once only the leader is left.
    return readdirSync(`/proc/${pid}/task`).length > 1;
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/** True if one argument of `pid`'s command line contains `marker`. False if the process is gone (or unreadable). */
export function commandLineHas(pid: number, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((a) => a.includes(marker));
  } catch {
    return false;
  }
}

/** True if `pid` is alive and is the process `marker` names (see the top of this file). */
export function isOurs(pid: number, marker: string): boolean {
  return isAlive(pid) && commandLineHas(pid, marker);
}

/** The pid a pidfile holds; undefined if there is none or it holds no pid. */
export function readPidfile(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The pid of the live process `pidfile` names, if it is ours (`marker`); undefined otherwise. */
export function ourPidFrom(pidfile: string, marker: string): number | undefined {
  const pid = readPidfile(pidfile);
  return pid !== undefined && isOurs(pid, marker) ? pid : undefined;
}
