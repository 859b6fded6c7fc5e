// Extension points of the VM manager: what other parts of Oriel register to take part in a VM's life
// without the manager knowing them. Besides these hooks the manager offers:
//   start(ref, { incoming })          QEMU starts waiting for an incoming migration stream (`-incoming defer`)
//   withQmp(ref, fn, { ownRunState }) a QMP session under the VM's lock that owns the run state while it lasts
//   markReady(ref)                    the guest is known ready without this boot's ready marker
//   the 'changed' and 'deleted' events   run-state observers: every state a VM's row takes, and its removal
import type { QmpClient } from './qmp/index.ts';
import type { VmRecord } from './records.ts';

export type VmLog = (level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) => void;

export interface VmHooks {
  /** At server start, before a VM whose QEMU may have outlived the previous server is re-attached: waits for
   * whatever else may hold that QEMU's QMP (it serves one client at a time). */
  beforeReattach?(vm: VmRecord): Promise<void>;
  /** At server start, once a surviving QEMU answers on QMP again and before its run state is read: puts right what
   * the previous server left half-done in it. `vm` is the row as that server left it (the state its user wanted). */
  recoverAtBoot?(vm: VmRecord, qmp: QmpClient, log: VmLog): Promise<void>;
}

/** The hooks registered so far, called in the order they were registered. */
export class VmHookList {
  private readonly list: VmHooks[] = [];

  add(hooks: VmHooks): void {
    this.list.push(hooks);
  }

  async beforeReattach(vm: VmRecord): Promise<void> {
    for (const h of this.list) await h.beforeReattach?.(vm);
  }

  async recoverAtBoot(vm: VmRecord, qmp: QmpClient, log: VmLog): Promise<void> {
    for (const h of this.list) await h.recoverAtBoot?.(vm, qmp, log);
  }
}
