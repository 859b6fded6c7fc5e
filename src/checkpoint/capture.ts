// Live capture of a checkpoint: RAM and devices through QEMU's background snapshot, streamed over a unix socket
// into the parser and the page store as it arrives; the disk at the same instant through a backup job started in
// the same pause.
//
// This is the server's half. The receiving half (the socket, the parser, the store, the manifest) runs in a capture
// worker, a detached process that outlives the server (worker/main.ts): a background snapshot whose receiver dies
// can wedge QEMU 7.2 or leave the guest frozen. The server spawns the worker, prepares the disk, makes the pause,
// waits for the stream to be stored, finishes the disk backup and tells the worker to write the manifest; on any
// failure it cancels the migration, lets the guest run, drops the disk image and the worker's objects. If the server
// dies meanwhile, the worker does the rest alone and the next server takes its outcome over (service.ts).
//
// The pause (README.md, "Checkpoints: the pause"; docs/checkpoint-stream.md §2.2) of a running VM, one of two recipes
// chosen per checkpoint (pause-mode.ts):
//   precopy     migrate with pause-before-switchover while the guest runs; in QEMU's pause (pre-switchover) the
//               disk transaction, then migrate-continue; `cont` once the migration completed (the default for
//               ordinary RAM under KVM; never under TCG, where QEMU 7.2's precopy loses guest writes)
//   background  on one QMP connection, without waiting between them:
//     stop                          the guest stops (STOP event); block devices are drained and flushed
//     transaction [bitmap, backup]  the disk's point in time (disk.ts)
//     migrate unix:<sock>           background-snapshot: device state is saved at once, RAM write-protected, and
//                                   the migration thread restarts the VM (RESUME event)
// The pause is STOP → RESUME from QEMU's own event timestamps. A VM paused by its user gets a plain precopy
// migration instead (background-snapshot would start it), and stays paused.
import { randomBytes } from 'node:crypto';
import { statfsSync } from 'node:fs';
import type { VmManager } from '../vm/manager.ts';
import type { QmpClient, QmpEvent } from '../vm/qmp/index.ts';
import type { CheckpointStore, Manifest } from './page-store/index.ts';
import { diskNames, type DiskCheckpoints, type DiskPlan } from './disk.ts';
import { hugePagesAgain, hugePagesSettled } from './huge-again.ts';
import { abandonMigration, pauseFromEvents, waitMigration } from './migration.ts';
import { choosePauseMode, PRECOPY_PARAMETERS, precopyPause, type PauseChoice, type PauseMode } from './pause-mode.ts';
import { WorkerClient, waitWorkerExit } from './worker/client.ts';
import { clearWorkerFiles, liveWorkerPid, workerFiles, type WorkerJob } from './worker/protocol.ts';

export { waitMigration } from './migration.ts';

/** Capabilities that change the stream's layout or cannot go with background-snapshot: all must be off (but the
 * precopy recipe's own two). */
const MUST_BE_OFF = [
  'xbzrle', 'compress', 'multifd', 'postcopy-ram', 'x-ignore-shared', 'validate-uuid', 'dirty-bitmaps', 'return-path',
  'pause-before-switchover', 'auto-converge', 'release-ram', 'x-colo', 'zero-copy-send', 'rdma-pin-all', 'block',
];
const PRECOPY_ON = ['pause-before-switchover', 'auto-converge'];

export interface CaptureOptions {
  vms: VmManager;
  store: CheckpointStore;
  disks: DiskCheckpoints;
  ref: string;
  kind?: 'manual' | 'scheduled';
  label?: string;
  progress?: (stage: string) => void;
  /** The server operation this checkpoint is taken for: a worker that outlives the server names it in its result. */
  operationId?: string | null;
  signal?: AbortSignal;
  /** The pause recipe for a running VM (pause-mode.ts); default ORIEL_CHECKPOINT_PAUSE, else 'auto' (chosen per
   * checkpoint). */
  pauseMode?: PauseChoice;
  /** Measurements only: a forced precopy runs under TCG too (pause-mode.ts: its checkpoint may not be exact). */
  inexactTcgPrecopy?: boolean;
}

export const newCheckpointId = (): string =>
  `${new Date()
    .toISOString()
    .replace(/[-:.TZ]/g, '')
    .slice(0, 14)}-${randomBytes(4).toString('hex')}`;

export async function captureCheckpoint(o: CaptureOptions): Promise<Manifest> {
  const requestedAt = Date.now();
  const id = newCheckpointId();
  return o.vms.withQmp(o.ref, async (qmp, vm) => {
    const status = await qmp.queryStatus();
    const live = status.running;
    if (!live && !['paused', 'postmigrate'].includes(status.status)) {
      throw new Error(`cannot checkpoint VM '${vm.name}' in QEMU run state '${status.status}'`);
    }
    const vmDir = o.vms.paths(vm).dir;
    const files = workerFiles(vmDir);
    const running = liveWorkerPid(files);
    if (running !== undefined)
      throw new Error(`the capture worker of an earlier checkpoint of VM '${vm.name}' still runs (pid ${running})`);
    clearWorkerFiles(files); // an outcome already taken over by a server (or nobody's)
    const parent = o.store.list(vm.id).at(-1)?.id ?? null;
    const v = await qmp.execute('query-version');
    const release = await o.store.holdWriter();
    let worker: WorkerClient | undefined;
    let launching: Promise<WorkerClient> | undefined;
    let disk: DiskPlan | undefined;
    let mode: PauseMode | null = null;
    const events: QmpEvent[] = [];
    const offEvents = qmp.onEvent((e) => { if (e.event === 'STOP' || e.event === 'RESUME') events.push(e); });
    try {
      o.progress?.('starting the capture worker');
      const job: WorkerJob = {
        format: 1,
        checkpointId: id,
        operationId: o.operationId ?? null,
        storeRoot: o.store.root,
        vmDir,
        qmpSocket: o.vms.paths(vm).qmp,
        qemuPid: vm.pid ?? 0,
        serverPid: process.pid,
        live,
        requestedAt,
        meta: {
          id,
          vmId: vm.id,
          vmName: vm.name,
          parent,
          kind: o.kind ?? 'manual',
          ...(o.label ? { label: o.label } : {}),
          qemu: { version: `${v.qemu.major}.${v.qemu.minor}.${v.qemu.micro}` },
          spec: {
            memoryMiB: vm.spec.memoryMiB,
            cpus: vm.spec.cpus,
            display: vm.spec.display,
            kernel: vm.spec.kernel ?? null,
            baseDisk: vm.spec.baseDisk ?? null,
          },
          wasRunning: live,
          guestReady: o.vms.isReady(vm.id),
        },
        disk: diskNames(vm.id, id),
        ...(o.store.faults ? { faults: o.store.faults } : {}),
      };
      // The worker (a new Node process) starts while the disk image is prepared.
      launching = WorkerClient.launch(files, job);
      launching.catch(() => undefined);
      o.progress?.('preparing the disk image');
      disk = await o.disks.plan(qmp, vm.id, id);
      if (live) {
        const kvm = await qmp.execute<{ enabled: boolean }>('query-kvm');
        mode = choosePauseMode({
          forced: o.pauseMode, hugepages: !!o.vms.ramOf(vm.id)?.huge, diskCopyBytes: disk ? disk.copyBytes : null,
          accel: kvm.enabled ? 'kvm' : 'tcg', inexactTcgPrecopy: o.inexactTcgPrecopy,
        });
      }
      await setCapabilities(qmp, mode);
      worker = await launching;
      worker.plan(disk?.job ?? null, mode);

      const uri = `unix:${files.migration}`;
      await hugePagesSettled(vm.id); // no collapse inside the pause (huge-again.ts)
      if (mode === 'precopy') {
        o.progress?.('streaming RAM (precopy)');
        await precopyPause(qmp, uri, disk && { actions: disk.actions, jobId: disk.job.jobId });
      } else {
        o.progress?.('pausing');
        // Pipelined: QEMU runs them in order with no round trip between; the pause is stop → migration restart.
        const calls: Promise<unknown>[] = [];
        if (live) calls.push(qmp.execute('stop'));
        if (disk) calls.push(qmp.execute('transaction', { actions: disk.actions }));
        calls.push(qmp.execute('migrate', { uri }));
        const results = await Promise.allSettled(calls);
        const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
        if (failed) throw failed.reason;
      }
      const pauseMs = live ? await pauseFromEvents(events) : null;
      worker.paused(pauseMs);

      o.progress?.('streaming RAM');
      await worker.next('received');
      const mig = await waitMigration(qmp);
      if (mig.status !== 'completed')
        throw new Error(`QEMU's migration ended ${mig.status}${mig['error-desc'] ? `: ${mig['error-desc']}` : ''}`);
      // The snapshot left the RAM mapped 4 KiB at a time: huge pages again before the next pause (huge-again.ts).
      if (live && mode === 'background' && !o.vms.ramOf(vm.id)?.huge) hugePagesAgain(vm.id, vm.pid, vm.spec.memoryMiB);
      o.progress?.('finishing the disk image');
      const diskRec = disk ? await o.disks.finish(qmp, disk.job) : null;
      disk = undefined;
      o.progress?.('writing the manifest');
      const m = await worker.commit(diskRec, pauseMs);
      await worker.done();
      if (await waitWorkerExit(files, 0)) clearWorkerFiles(files);
      return m;
    } catch (e) {
      // Give the checkpoint up: the worker drains the stream to its end and drops it (a background snapshot is never
      // cancelled: see migration.ts), the disk job is cancelled, the guest runs.
      worker ??= await launching?.catch(() => undefined); // still starting when things went wrong
      worker?.abort((e as Error).message);
      if (!qmp.isClosed) {
        const background = live && mode !== 'precopy';
        await abandonMigration(qmp, { background, wasRunning: live }).catch(() => undefined);
      }
      await o.disks.abort(qmp, disk?.job ?? diskNames(vm.id, id)).catch(() => undefined);
      await worker?.done().catch(() => undefined);
      if (await waitWorkerExit(files, 0)) clearWorkerFiles(files);
      throw storeFull(e, o.store.root, vm.name);
    } finally {
      offEvents();
      release();
    }
  }, { ownRunState: true, action: 'checkpoint' });
}

/** A failure for want of space, said as such (the worker's write, QEMU's backup or qemu-img may be what hit it);
 * other errors as they are. */
function storeFull(e: unknown, root: string, vmName: string): unknown {
  const msg = (e as Error)?.message ?? '';
  if (!/ENOSPC|no space left/i.test(msg)) return e;
  let free = '';
  try {
    const s = statfsSync(root);
    free = `, ${((s.bavail * s.bsize) / 2 ** 20).toFixed(1)} MiB free now`;
  } catch { /* the message stands without it */ }
  return new Error(
    `checkpoint of VM '${vmName}' given up: the checkpoint store ${root} is full (${msg}${free}); ` +
      'the VM was left as it was and the earlier checkpoints are intact',
  );
}

/** The capture's capabilities: background-snapshot for the background recipe, the precopy recipe's two for it,
 * everything else that changes the stream off; `events` on (the precopy pause follows MIGRATION events). `mode`
 * null: a VM its user paused (plain precopy). */
async function setCapabilities(qmp: QmpClient, mode: PauseMode | null): Promise<void> {
  const caps = await qmp.execute<{ capability: string; state: boolean }[]>('query-migrate-capabilities');
  const wanted = (c: string): boolean | undefined => {
    if (c === 'background-snapshot') return mode === 'background';
    if (c === 'events') return true;
    if (PRECOPY_ON.includes(c)) return mode === 'precopy';
    return MUST_BE_OFF.includes(c) ? false : undefined;
  };
  // Turn off before turning on: QEMU checks each capability against the others already set.
  const changes = caps.filter((c) => wanted(c.capability) !== undefined && wanted(c.capability) !== c.state);
  const off = changes.filter((c) => c.state).map((c) => ({ capability: c.capability, state: false }));
  const on = changes.filter((c) => !c.state).map((c) => ({ capability: c.capability, state: true }));
  if (off.length) await qmp.execute('migrate-set-capabilities', { capabilities: off });
  if (on.length) await qmp.execute('migrate-set-capabilities', { capabilities: on });
  if (mode === 'precopy') await qmp.execute('migrate-set-parameters', { ...PRECOPY_PARAMETERS });
}
