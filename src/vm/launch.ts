// Starting a QEMU process for a VM and reaching its QMP: the process runs detached from the server (its own
// session, its pid in a pidfile, QMP on a unix socket) so that a restarted server can re-attach it.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { OrielError, unavailable, unprocessable } from '../errors.ts';
import type { VmPaths } from './paths.ts';
import { QmpClient } from './qmp/index.ts';
import { tail } from './serial-log.ts';

const QMP_START_TIMEOUT_MS = 20_000;

export interface Launched {
  child: ChildProcess;
  qmp: QmpClient;
  /** QEMU's run state right after QMP answered (`running`, `paused`, `inmigrate`...). */
  status: string;
}

/** Spawns `binary args` in the VM's folder (its output appended to qemu.log) and waits for its QMP. On failure the
 * process is killed and the error says why (QEMU missing, exited at once with its log's last lines, no QMP). */
export async function launchQemu(
  binary: string, args: string[], p: VmPaths, banner: string, onStage?: (stage: string) => void,
  /** How long QEMU may take from its QMP socket to its greeting: it preallocates huge-page RAM in between. */
  handshakeMs?: number,
): Promise<Launched> {
  const logFd = openSync(p.qemuLog, 'a', 0o600);
  writeSync(logFd, `--- ${new Date().toISOString()} ${banner}\n`);
  let child: ChildProcess;
  try {
    // setsid (detached) so the VM survives the server: a restarted server re-attaches it.
    child = spawn(binary, args, { detached: true, stdio: ['ignore', logFd, logFd], cwd: p.dir });
  } finally {
    closeSync(logFd);
  }
  child.unref();
  onStage?.('spawned');
  const early = new Promise<never>((_, reject) => {
    child.once('error', (e) =>
      reject(unavailable(`cannot run ${binary}: ${e.message} (is qemu-system-x86 installed? run scripts/bootstrap.sh)`)),
    );
    child.once('exit', (code, signal) => {
      const last = tail(p.qemuLog, 5).split('\n').filter((l) => !l.startsWith('---')).join(' | ');
      reject(unprocessable(`QEMU exited at once (${signal ?? `code ${code}`}): ${last}`));
    });
  });
  early.catch(() => undefined);
  try {
    const qmp = await Promise.race([
      // Polled often: every millisecond until QEMU listens is a millisecond before a restored guest can run.
      QmpClient.connect(p.qmp, {
        retryUntilMs: QMP_START_TIMEOUT_MS, retryIntervalMs: 5, onConnected: () => onStage?.('QMP connected'),
        ...(handshakeMs ? { timeoutMs: handshakeMs } : {}),
      }),
      early,
    ]);
    onStage?.('QMP negotiated');
    const status = await qmp.queryStatus();
    onStage?.('QMP status');
    return { child, qmp, status: status.status };
  } catch (e) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (e instanceof OrielError) throw e;
    throw unprocessable(`QEMU did not come up: ${(e as Error).message}. ${tail(p.qemuLog, 5)}`);
  }
}
