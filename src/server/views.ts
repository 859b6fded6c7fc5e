// What the API shows of a VM, an operation, a network and a forwarded port (the shapes are the contract's, src/api):
// the routes and the event stream answer with these.
import type {
  Forward as ForwardView, Network as NetworkView, Operation as OperationView, Vm as VmView,
} from '../api/index.ts';
import type { ForwardRow } from './networks/forwards.ts';
import { gatewayText, type NetworkRow, type Networks } from './networks/networks.ts';
import type { VmRecord } from '../vm/records.ts';
import type { Users } from './auth/users.ts';
import type { Operation } from './operations.ts';
import type { VmManager } from '../vm/manager.ts';
import { DEFAULT_OPENCL_WINDOW_MIB } from '../vm/spec.ts';

export function vmView(vm: VmRecord, ctx: { users: Users; vms: VmManager }): VmView {
  const ram = vm.state === 'stopped' || vm.state === 'crashed' ? undefined : ctx.vms.ramOf(vm.id);
  return {
    id: vm.id,
    name: vm.name,
    owner: ctx.users.get(vm.ownerId)?.name ?? vm.ownerId,
    state: vm.state,
    stateReason: vm.stateReason,
    pid: vm.pid,
    memoryMiB: vm.spec.memoryMiB,
    cpus: vm.spec.cpus,
    display: vm.spec.display,
    accel: vm.spec.accel,
    hugepages: vm.spec.hugepages ?? null,
    hugepagesNow: ram?.huge ?? null,
    hugepagesWhy: ram?.why ?? null,
    opencl: !!vm.spec.opencl,
    openclWindowMiB: vm.spec.opencl ? (vm.spec.openclWindowMiB ?? DEFAULT_OPENCL_WINDOW_MIB) : null,
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
    id: op.id, kind: op.kind, vm: op.vmId ? (vms.records.get(op.vmId)?.name ?? op.vmId) : null,
    user: op.userId ? (users.get(op.userId)?.name ?? op.userId) : null, status: op.status, progress: op.progress,
    error: op.error, log: op.log, createdAt: op.createdAt, startedAt: op.startedAt, finishedAt: op.finishedAt,
    ...(op.result !== undefined ? { result: op.result } : {}),
  };
}

/** A network and its VMs' cards: each card's fixed lease, and its link and counters while its VM runs. */
export function networkView(
  n: NetworkRow, networks: Networks, users: Users, vmName: (id: string) => string,
): NetworkView {
  const live = new Map(networks.ports(n.id).map((p) => [p.id, p]));
  return {
    id: n.id, name: n.name, owner: users.get(n.ownerId)?.name ?? n.ownerId, subnet: n.subnet,
    gateway: gatewayText(n.subnet), nat: n.nat, isolated: n.isolated, shared: n.shared, createdAt: n.createdAt,
    ports: networks.leases({ networkId: n.id }).map((l) => {
      const p = live.get(`${l.vmId}/${l.card}`);
      return {
        vm: vmName(l.vmId), card: l.card, mac: l.mac, ip: l.ip, connected: !!p?.connected,
        counters: p ? {
          rxFrames: p.rxFrames, rxBytes: p.rxBytes, txFrames: p.txFrames, txBytes: p.txBytes,
          droppedSpoofed: p.droppedSpoofed, droppedMalformed: p.droppedMalformed,
          droppedUnsupported: p.droppedUnsupported, droppedCongested: p.droppedCongested,
        } : null,
      };
    }),
  };
}

/** A host port forwarded to a guest: where to connect on the host (its loopback). */
export const forwardView = (f: Pick<ForwardRow, 'proto' | 'hostPort' | 'guestPort'>): ForwardView =>
  ({ proto: f.proto, hostPort: f.hostPort, guestPort: f.guestPort, host: `127.0.0.1:${f.hostPort}` });
