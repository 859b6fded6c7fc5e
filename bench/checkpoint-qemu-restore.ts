// QEMU's own restore, the peer of Oriel's restores in bench/checkpoint.ts: the guest saved once into a file as
// `virsh save` does (stopped, `migrate exec:cat > FILE`), then restored as `virsh restore` does: a new QEMU for the
// same VM (same command line as Oriel's restore starts: -incoming defer, the checkpoint's RAM block name) loads it
// with `migrate-incoming exec:cat FILE` and continues. Timed like Oriel's: from the QEMU start requested to the
// guest running (its RESUME event), which for a restore from a file is also all RAM in place. The file is read from
// the page cache, as Oriel's store is.
import { statSync } from 'node:fs';
import { waitMigration } from '../src/checkpoint/migration.ts';
import type { VmManager } from '../src/vm/manager.ts';
import type { QmpEvent } from '../src/vm/qmp/index.ts';

/** Saves the running VM `vm` into `file` (the guest stopped meanwhile, then continued); returns the file's bytes. */
export async function qemuSave(vms: VmManager, vm: string, file: string): Promise<number> {
  const qmp = vms.qmp(vm);
  await qmp.execute('stop');
  try {
    await qmp.execute('migrate', { uri: `exec:cat > '${file}'` });
    const mig = await waitMigration(qmp);
    if (mig.status !== 'completed') throw new Error(`QEMU's save into ${file}: migration ${mig.status}`);
  } finally {
    await qmp.execute('cont');
  }
  return statSync(file).size;
}

/** Replaces VM `vm`'s QEMU by one restored from `file`; resolves with ms from the start requested to RESUME, and
 * the start time (Date.now()). */
export async function qemuRestore(
  vms: VmManager, vm: string, file: string, ramId: string,
): Promise<{ running: number; startedAt: number }> {
  await vms.forceStop(vm);
  const t0 = Date.now();
  // The huge-page pool's lease stays raised until this QEMU ends: no prealloc for an incoming migration, and a page
  // the stream never wrote (a zero page) is taken at the guest's first touch.
  await vms.start(vm, { incoming: { reason: 'QEMU restoring from a file (bench)' }, ramId, settleRamLater: true });
  vms.markReady(vms.get(vm).id); // the guest shell answers once the guest runs
  const qmp = vms.qmp(vm);
  let running: number | undefined;
  const off = qmp.onEvent((e: QmpEvent) => {
    if (e.event !== 'RESUME' || running !== undefined) return;
    running = e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000 - t0;
  });
  try {
    await vms.withQmp(vm, async (q) => {
      await q.execute('migrate-incoming', { uri: `exec:cat '${file}'` });
      // The incoming side shows no status until its channel is set up: wait for the load to end instead.
      const end = Date.now() + 120_000;
      while ((await q.queryStatus()).status === 'inmigrate') {
        if (Date.now() > end) throw new Error(`QEMU's restore from ${file}: still loading after 120 s`);
        await new Promise((r) => setTimeout(r, 5));
      }
      const mig = await waitMigration(q);
      if (mig.status !== 'completed') throw new Error(`QEMU's restore from ${file}: migration ${mig.status}`);
      if (!(await q.queryStatus()).running) await q.execute('cont');
    }, { ownRunState: true, action: 'restore' });
    for (let i = 0; running === undefined && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
    if (running === undefined) throw new Error('QEMU restored from a file but sent no RESUME');
    return { running: Math.round(running * 10) / 10, startedAt: t0 };
  } finally {
    off();
  }
}
