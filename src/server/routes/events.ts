// Server-sent events: VM state changes and operation progress as they happen, filtered to what the caller may
// see. The web UI and `oriel` follow this stream instead of polling. The stream ends (with a last `closed` event
// saying why) when the session or token it was opened with ends: sign-out, revocation, expiry, password change.
import type { FastifyInstance } from 'fastify';
import { OrielError } from '../../errors.ts';
import { requireCredential, requireUser } from '../auth/plugin.ts';
import { mayUseVm } from '../auth/vm-access.ts';
import type { ServerContext } from '../context.ts';
import type { Operation } from '../operations.ts';
import type { EventData, EventType } from '../../api/index.ts';
import { operationView, vmView } from '../views.ts';
import type { VmRecord } from '../../vm/records.ts';
import { canSeeOperation } from './operations.ts';

const KEEPALIVE_MS = 15_000;
/** Event streams one user may hold open at once (a browser tab holds one; `oriel` watchers one each). */
export const MAX_EVENT_STREAMS_PER_USER = 16;

export function eventRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const open = new Map<string, number>();
  // Each stream listens on these; their number is bounded by the per-user cap instead of Node's warning at 10.
  for (const e of [ctx.vms, ctx.ops, ctx.schedules]) e.setMaxListeners(0);
  app.get(
    '/api/events',
    {
      schema: {
        tags: ['events'],
        summary: 'text/event-stream of {type:"vm"|"vm-deleted"|"operation"|"checkpoint-schedule", ...}',
      },
    },
    (req, reply) => {
    const user = requireUser(req);
    const credential = requireCredential(req);
    const mine = open.get(user.id) ?? 0;
    if (mine >= MAX_EVENT_STREAMS_PER_USER) {
      throw new OrielError(429, `too many event streams open for this user (${MAX_EVENT_STREAMS_PER_USER}): `
        + 'close other tabs or watchers first', 'too_many');
    }
    open.set(user.id, mine + 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const left = (open.get(user.id) ?? 1) - 1;
      if (left > 0) open.set(user.id, left);
      else open.delete(user.id);
    };
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': connected\n\n');
    const send = <T extends EventType>(type: T, data: EventData<T>) => res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
    const mayUse = (vm: VmRecord) => mayUseVm(user, vm);
    const onVm = (vm: VmRecord) => mayUse(vm) && send('vm', vmView(vm, ctx));
    const onVmDeleted = (vm: VmRecord) => mayUse(vm) && send('vm-deleted', { id: vm.id, name: vm.name });
    const onOp = (op: Operation) =>
      canSeeOperation(ctx, req, op) && send('operation', operationView(op, ctx.users, ctx.vms));
    ctx.vms.on('changed', onVm);
    ctx.vms.on('deleted', onVmDeleted);
    ctx.ops.on('changed', onOp);
    // A VM's checkpoint schedule was set, removed or ran: its name is enough, the page reloads the schedule.
    const onSchedule = (vmId: string) => {
      const vm = ctx.vms.records.get(vmId);
      if (vm && mayUse(vm)) send('checkpoint-schedule', { vmId, vmName: vm.name });
    };
    ctx.schedules.on('changed', onSchedule);
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    const unregister = ctx.users.streams.add(credential, (reason) => {
      send('closed', { reason });
      res.end();
      cleanup();
    });
    let done = false;
    const cleanup = () => {
      if (done) return;
      done = true;
      unregister();
      release();
      clearInterval(keepalive);
      ctx.vms.off('changed', onVm);
      ctx.vms.off('deleted', onVmDeleted);
      ctx.ops.off('changed', onOp);
      ctx.schedules.off('changed', onSchedule);
    };
    req.raw.on('close', cleanup);
    res.on('close', cleanup);
  },
  );
}
