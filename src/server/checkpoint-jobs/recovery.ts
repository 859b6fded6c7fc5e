// Server start after a crash, for checkpoints: a capture worker the previous server left (worker/) may still be
// ending its checkpoint, or have ended it with nobody to tell. Before the VM manager re-attaches a VM, its worker is
// waited for (the worker may hold the VM's QMP while it finishes alone); the checkpoint's operation, still marked
// running, is taken over and ends with the worker's outcome (succeeded with the checkpoint, or failed with the
// worker's reason); a worker that died without an outcome has what it left in QEMU cleaned up once the VM is
// attached again.
import type { CheckpointService, WorkerOutcome } from '../../checkpoint/service.ts';
import type { VmRecord } from '../../vm/records.ts';
import type { Operation } from '../operations.ts';

export class CaptureRecovery {
  private readonly outcomes = new Map<string, {
    operationId: string | null;
    checkpointId: string;
    /** The worker has ended and its outcome is taken. */
    settled: Promise<WorkerOutcome | undefined>;
    /** ...and what a dead worker left in QEMU is cleaned up (needs the VM attached again). */
    outcome: Promise<WorkerOutcome | undefined>;
  }>();
  private attached!: () => void;
  private readonly vmsAttached = new Promise<void>((r) => (this.attached = r));

  /** Starts waiting for every leftover worker at once. */
  constructor(
    private readonly checkpoints: CheckpointService,
    private readonly log: (msg: string, extra: Record<string, unknown>) => void,
  ) {
    for (const w of checkpoints.leftoverWorkers()) {
      log(
        w.pid ? 'waiting for the capture worker a previous server left' : 'taking over the outcome of a capture worker',
        { vmId: w.vmId, pid: w.pid, checkpoint: w.job.checkpointId },
      );
      const settled = checkpoints.settleWorker(w.vmId);
      settled.catch(() => undefined);
      const outcome = settled.then(async (o) => {
        if (o?.abandoned) {
          await this.vmsAttached;
          await checkpoints
            .cleanupAbandoned(o)
            .catch((e: Error) =>
              log('cleaning up after a dead capture worker failed', { vmId: w.vmId, error: e.message }),
            );
        }
        return o;
      });
      outcome.catch(() => undefined);
      this.outcomes.set(w.vmId, { operationId: w.job.operationId, checkpointId: w.job.checkpointId, settled, outcome });
    }
  }

  /** For Operations.init: the promise an interrupted checkpoint operation ends with, if a worker carries it on. */
  operation(op: Operation): Promise<unknown> | undefined {
    const w = op.vmId ? this.outcomes.get(op.vmId) : undefined;
    if (!w || op.kind !== 'checkpoint.create' || w.operationId !== op.id) return undefined;
    return w.outcome.then((o) => {
      if (!o) throw new Error('the capture worker left no trace');
      if (!o.ok)
        throw new Error(
          `checkpoint ${w.checkpointId} failed: ${o.error} (ended by its capture worker after the server stopped)`,
        );
      return o.checkpoint;
    });
  }

  /** For VmManager.init (a beforeReattach hook): resolves once the VM's leftover worker (if any) has ended. */
  beforeReattach(vm: VmRecord): Promise<void> {
    const w = this.outcomes.get(vm.id);
    return w ? w.settled.then(() => undefined, () => undefined) : Promise.resolve();
  }

  /** Every VM is attached again: cleanups that need QMP may run. */
  vmsReady(): void {
    this.attached();
  }
}
