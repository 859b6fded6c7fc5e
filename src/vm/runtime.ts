// What the VM manager holds for each VM whose QEMU runs, and how to tell, once that QEMU is gone, a stop from a
// crash.
import type { ChildProcess } from 'node:child_process';
import type { GuestAgent } from './guest-agent.ts';
import type { GuestShell } from './guest-shell.ts';
import { tail } from './process.ts';
import type { QmpClient } from './qmp/index.ts';

export interface Runtime {
  qmp: QmpClient;
  pid: number;
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
  /** While > 0, a checkpoint or restore owns the run state: its own short `stop`s and QEMU's RESUMEs are not the
   * user's pauses, so STOP/RESUME events do not flip the VM's state (see `withQmp`). */
  quietRunState: number;
  /** The guest was restored from a checkpoint taken after its ready marker: it will not print it again. */
  readyFromCheckpoint?: boolean;
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
