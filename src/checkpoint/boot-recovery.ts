// Registered with the VM manager (VmHooks.recoverAtBoot): a server that died during a checkpoint can leave its QEMU
// mid-way: stopped for the checkpoint's pause (the `stop` arrived, the migration that resumes the guest did not), or
// migrating to a socket nobody reads any more. The VM's row still says what the user wanted (running or paused),
// so: cancel such a migration, and resume a guest the user did not pause. Block jobs (a disk backup) finish or fail
// on their own; the next checkpoint starts a full disk backup when it cannot trust the last one.
import { setTimeout as delay } from 'node:timers/promises'; // keeps the process alive: nothing else does yet
import type { VmLog } from '../vm/hooks.ts';
import type { QmpClient } from '../vm/qmp/index.ts';
import type { VmRecord } from '../vm/records.ts';

export async function recoverInterruptedCapture(vm: VmRecord, qmp: QmpClient, log: VmLog): Promise<void> {
  const mig = await qmp.execute<{ status?: string }>('query-migrate').catch(() => ({ status: undefined }));
  if (mig.status && ['setup', 'active', 'pre-switchover', 'device'].includes(mig.status)) {
    log('warn', 'cancelling a migration left by a previous server', { vm: vm.name, status: mig.status });
    await qmp.execute('migrate_cancel').catch(() => undefined);
    await delay(200); // let QEMU finish the cancel before its run state is read
  }
  const st = await qmp.queryStatus();
  if (vm.state === 'running' && !st.running && ['paused', 'postmigrate', 'finish-migrate'].includes(st.status)) {
    log('warn', 'resuming a guest left stopped by an interrupted checkpoint', { vm: vm.name, status: st.status });
    await qmp.execute('cont');
  }
}
