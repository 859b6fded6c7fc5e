// What the VM manager holds for each VM whose QEMU runs, and how to tell, once that QEMU is gone, a stop from a
// crash.
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { isAlive } from '../host/process.ts';
import type { GuestAgent } from './guest-agent.ts';
import type { GuestShell } from './guest-shell.ts';
import type { VmLog } from './hooks.ts';
import type { VmPaths } from './paths.ts';
import { tail } from './serial-log.ts';
import { waitUntil } from './wait.ts';

import type { QmpClient } from './qmp/index.ts';
import type { RamBacking } from './ram-backing.ts';
import type { HugeLease } from './huge-pool.ts';

const FORCE_WAIT_MS = 5_000;

export interface Runtime {
  qmp: QmpClient;
  pid: number;
  /** What its guest RAM is backed by. */
  ram: RamBacking;
  /** A restoring QEMU's huge pages (manager.ts settleRam); settled at the latest when QEMU is gone. */
  hugeLease?: HugeLease;
  child?: ChildProcess;
  /** Oriel asked QEMU to exit (quit / kill): its exit is a stop, not a crash. */
  expectExit: boolean;
  /** QEMU reported SHUTDOWN (guest powered off, or a signal from the host). */
  shutdownReason?: string;
  childExit?: { code: number | null; signal: NodeJS.Signals | null };
  /** The server let go of this QEMU (shutdown): it keeps running, to be re-attached by the next server. */
  detached?: boolean;
  gone: Promise<void>;
  shell?: GuestShell;
  /** The guest agent connection (images with the 'guest-agent' device), shared by every caller. */
  agent?: GuestAgent;
  /** While > 0, a `withQmp` session owns the run state: its own short `stop`s and QEMU's RESUMEs are not the
   * user's pauses, so STOP/RESUME events do not flip the VM's state. */
  runStateOwners: number;
  /** The guest is known ready without its marker on this QEMU's console (`markReady`). */
  readyKnown?: boolean;
}

/** How a QEMU that is gone ended: a stop (asked for, or the guest powered off) or a crash (with its log's tail). */
export function howItEnded(
  rt: Runtime,
  qemuLog: string,
): { state: 'stopped' | 'crashed'; reason: string | null; how?: string } {
  if (rt.expectExit || rt.shutdownReason) {
    const reason = rt.expectExit
      ? null
      : rt.shutdownReason === 'guest-shutdown'
        ? null
        : `QEMU shut down (${rt.shutdownReason})`;
    return { state: 'stopped', reason };
  }
  const how = rt.childExit
    ? rt.childExit.signal
      ? `killed by ${rt.childExit.signal}`
      : `exit code ${rt.childExit.code}`
    : 'exited';
  const last = tail(qemuLog, 10);
  return {
    state: 'crashed',
    reason: `QEMU (pid ${rt.pid}) ${how} unexpectedly.${last ? ` Last lines of its log:\n${last}` : ''}`,
    how,
  };
}

/** Once QMP has closed: waits until QEMU is really gone (killing it if it lingers), closes the guest channels and
 * removes its sockets and pidfile (when the VM still exists, `p`), and says how it ended. */
export async function settleQemuExit(
  rt: Runtime,
  p: VmPaths | undefined,
  log: VmLog,
): Promise<ReturnType<typeof howItEnded> | undefined> {
  rt.shell?.close();
  rt.agent?.close();
  // QMP closes a moment before the process is reaped; wait so the pid is really free.
  // Our own child: its exit event says how it ended (signal or code); a re-attached QEMU is watched by pid.
  const ended = () => (rt.child ? rt.childExit !== undefined : !isAlive(rt.pid));
  if (!(await waitUntil(ended, FORCE_WAIT_MS))) {
    log('warn', 'QMP closed but QEMU still runs; killing it', { dir: p?.dir, pid: rt.pid });
    try { process.kill(rt.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  if (!p) return undefined;
  for (const f of [p.pidfile, p.qmp, p.spice, p.serial, p.shell, p.guestAgent]) rmSync(f, { force: true });
  return howItEnded(rt, p.qemuLog);
}
