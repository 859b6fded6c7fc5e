// What the API shows of a VM and of an operation (the shapes are the contract's, src/api): the routes and the event
// stream answer with these.
import type { Operation as OperationView, Vm as VmView } from '../api/index.ts';
import type { VmRecord } from '../vm/store.ts';
import type { Users } from './auth/users.ts';
import type { Operation } from './operations.ts';
import type { VmManager } from '../vm/manager.ts';

export function vmView(vm: VmRecord, users: Users): VmView {
  return {
    id: vm.id,
    name: vm.name,
    owner: users.get(vm.ownerId)?.name ?? vm.ownerId,
    state: vm.state,
    stateReason: vm.stateReason,
    pid: vm.pid,
    memoryMiB: vm.spec.memoryMiB,
    cpus: vm.spec.cpus,
    display: vm.spec.display,
    accel: vm.spec.accel,
    hugepages: !!vm.spec.hugepages,
    image: vm.spec.image === 'path' ? (vm.spec.baseDisk ?? null) : (vm.spec.image ?? null),
    firmware: vm.spec.firmware ?? 'bios',
    cdrom: vm.spec.cdrom?.image ?? null,
    diskBytes: vm.spec.diskBytes ?? null,
    template: !!vm.spec.template,
    from: vm.spec.fromTemplate?.name ?? null,
    createdAt: vm.createdAt,
    updatedAt: vm.updatedAt,
  };
}

export function operationView(op: Operation, users: Users, vms: VmManager): OperationView {
  return {
    id: op.id, kind: op.kind, vm: op.vmId ? (vms.store.get(op.vmId)?.name ?? op.vmId) : null,
    user: op.userId ? (users.get(op.userId)?.name ?? op.userId) : null, status: op.status, progress: op.progress,
    error: op.error, log: op.log, createdAt: op.createdAt, startedAt: op.startedAt, finishedAt: op.finishedAt,
    ...(op.result !== undefined ? { result: op.result } : {}),
  };
}
