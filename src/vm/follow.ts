// Following the VMs from another part (the switch's ports, the OpenCL helpers): every VM as it is now, then each
// change and deletion, until the returned function is called.
import type { VmManager } from './manager.ts';
import type { VmRecord } from './records.ts';

export interface VmFollower {
  changed(vm: VmRecord): void;
  deleted(vm: VmRecord): void;
}

export function followVms(vms: VmManager, f: VmFollower): () => void {
  const changed = (vm: VmRecord) => f.changed(vm);
  const deleted = (vm: VmRecord) => f.deleted(vm);
  vms.on('changed', changed);
  vms.on('deleted', deleted);
  for (const vm of vms.list()) changed(vm);
  return () => {
    vms.off('changed', changed);
    vms.off('deleted', deleted);
  };
}
