// Shapes of what the API returns, shared by the routes and the OpenAPI document.
import { z } from 'zod';
import type { VmRecord } from '../vm/store.ts';
import type { Users } from './auth/users.ts';
import type { Operation } from './operations.ts';
import type { VmManager } from '../vm/manager.ts';
import { vmNicSchema } from './schemas-networks.ts';

export const errorSchema = z.object({ error: z.string(), message: z.string() });

export const userSchema = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(['admin', 'user']),
  createdAt: z.string(),
});

export const vmSchema = z.object({
  id: z.string(),
  name: z.string(),
  owner: z.string(),
  state: z.enum(['stopped', 'starting', 'running', 'paused', 'stopping', 'crashed']),
  stateReason: z.string().nullable(),
  pid: z.number().nullable(),
  memoryMiB: z.number(),
  cpus: z.number(),
  display: z.enum(['std', 'qxl']),
  accel: z.enum(['auto', 'kvm', 'tcg']),
  hugepages: z.boolean(),
  image: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  networks: z.array(vmNicSchema).optional().describe('network cards: network, MAC, fixed lease'),
});
export type VmView = z.infer<typeof vmSchema>;

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
    createdAt: vm.createdAt,
    updatedAt: vm.updatedAt,
  };
}

export const operationSchema = z.object({
  id: z.string(),
  kind: z.string(),
  vm: z.string().nullable(),
  user: z.string().nullable(),
  status: z.enum(['pending', 'running', 'succeeded', 'failed', 'cancelled']),
  progress: z.object({ done: z.number(), total: z.number(), stage: z.string() }),
  error: z.string().nullable(),
  log: z.array(z.string()),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  result: z.unknown().optional(),
});

export function operationView(op: Operation, users: Users, vms: VmManager) {
  return {
    id: op.id, kind: op.kind, vm: op.vmId ? (vms.store.get(op.vmId)?.name ?? op.vmId) : null,
    user: op.userId ? (users.get(op.userId)?.name ?? op.userId) : null, status: op.status, progress: op.progress,
    error: op.error, log: op.log, createdAt: op.createdAt, startedAt: op.startedAt, finishedAt: op.finishedAt,
    ...(op.result !== undefined ? { result: op.result } : {}),
  };
}
