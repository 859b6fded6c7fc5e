// Server start: finding the QEMU a VM's row says is live, and reaching its QMP again, or ending a QEMU that does
// not answer (it would hold the VM's disk lock forever).
import { setTimeout as delay } from 'node:timers/promises'; // keeps the process alive: nothing else does yet
import { isAlive, isOurs, readPidfile } from '../host/process.ts';
import type { VmHookList, VmLog } from './hooks.ts';
import type { VmPaths } from './paths.ts';
import { QmpClient } from './qmp/index.ts';
import type { VmRecord } from './records.ts';
import { waitUntil } from './wait.ts';

/** How long a restarted server keeps trying to reach a live QEMU's QMP before it ends that QEMU. */
const REATTACH_TIMEOUT_MS = 20_000;
const FORCE_WAIT_MS = 5_000;

export type Reattached = { qmp: QmpClient; pid: number; status: string } | { why: string };

/** Reaches the QEMU of `vm` (live according to its row) again, running the hooks' `recoverAtBoot` first; or says why
 * it could not (and kills a QEMU of ours that does not answer). */
export async function reattachQemu(vm: VmRecord, p: VmPaths, hooks: VmHookList, log: VmLog): Promise<Reattached> {
  const pid = readPidfile(p.pidfile) ?? vm.pid ?? undefined;
  const gone = { why: `QEMU was no longer running when Oriel started (last known pid ${pid ?? 'unknown'}).` };
  if (pid === undefined || !isOurs(pid, p.qmp)) return gone;
  // QEMU may take a moment to notice that the previous server's QMP connection is gone (it serves one client at a
  // time), or be busy failing a migration whose receiver died: retry before giving up on it.
  const deadline = Date.now() + REATTACH_TIMEOUT_MS;
  let lastError = '';
  while (Date.now() < deadline && isAlive(pid)) {
    let qmp: QmpClient | undefined;
    try {
      qmp = await QmpClient.connect(p.qmp, { timeoutMs: 5000 });
      await hooks.recoverAtBoot(vm, qmp, log);
      const status = await qmp.queryStatus();
      return { qmp, pid, status: status.status };
    } catch (e) {
      qmp?.close();
      lastError = (e as Error).message;
      await delay(500);
    }
  }
  if (!isAlive(pid)) return gone;
  log('warn', 'QEMU does not answer on QMP; killing it', { vm: vm.name, pid, error: lastError });
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  await waitUntil(() => !isAlive(pid), FORCE_WAIT_MS);
  return { why: `QEMU (pid ${pid}) did not answer on QMP when Oriel started (${lastError}); it was stopped by force.` };
}
