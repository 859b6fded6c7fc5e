// Checkpoints through the API: take, list, show, restore (in place or as a new VM), delete, verify, schedule,
// prune. Taking, restoring and verifying are operations (202 + the operation to follow).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { badRequest, conflict, forbidden, notFound } from '../../errors.ts';
import { parseStoreUrl } from '../../checkpoint/remote/bucket.ts';
import type { CheckpointSummary } from '../../checkpoint/service.ts';
import type { VmRecord } from '../../vm/records.ts';
import { requireAdmin, requireUser } from '../auth/plugin.ts';
import type { ServerContext } from '../context.ts';
import { checkpointProgress } from '../checkpoint-jobs/progress.ts';
import {
  checkpointDetailSchema, checkpointParams, checkpointSchema, checkpointTakeSchema, noContentSchema, operationSchema,
  pruneResultSchema, pruneSchema, restoreFromStoreSchema, restoreSchema, scheduleSchema, scheduleSetSchema,
  verifySchema, vmParams,
  type CheckpointDetail, type RestoreResult, type VerifyResult,
} from '../../api/index.ts';
import { operationView } from '../views.ts';
import { vmFor } from './vms.ts';

/** A copy of a networked VM: its cards are its own, its restored guest does not know yet (see VmManager.createLike). */
const COPY_CARDS_NOTE = 'its network cards have MACs and addresses of their own; the restored guest still sends with '
  + 'the MACs it had in the checkpoint, which the switch does not let through, until it resets its cards (a reboot)';


export function checkpointRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const cps = ctx.checkpoints;
  const opView = (id: string) => operationView(ctx.ops.get(id), ctx.users, ctx.vms);
  /** Runs a quick change as an operation and answers with its outcome: it is then in the operation log and on the
   * event stream (/api/events), so every open view of the VM's checkpoints learns of it. */
  const asOperation = <T>(kind: string, vm: VmRecord, req: FastifyRequest, fn: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      ctx.ops.start(kind, { vmId: vm.id, userId: requireUser(req).id }, () => fn().then(
        (v) => (resolve(v), v),
        (e: unknown) => { reject(e); throw e; },
      ));
    });
  const checkpointOf = (vm: VmRecord, id: string): CheckpointSummary => {
    const c = cps.list(vm.id).find((x) => x.id === id);
    if (!c) throw notFound(`VM '${vm.name}' has no checkpoint '${id}'`);
    return c;
  };

  r.get(
    '/api/vms/:vm/checkpoints',
    {
      schema: {
        tags: ['checkpoints'],
        summary: "A VM's checkpoints, oldest first",
        params: vmParams,
        response: { 200: z.array(checkpointSchema) },
      },
    },
    async (req) =>
      cps
        .list(vmFor(ctx, req, req.params.vm).id)
        .map((c) => ({ ...c, diskMode: cps.show(c.id).disks[0]?.mode ?? null })),
  );

  r.post(
    '/api/vms/:vm/checkpoints',
    {
      schema: {
        tags: ['checkpoints'],
        summary: 'Take a live checkpoint (an operation; its result is the checkpoint)',
        params: vmParams,
        body: checkpointTakeSchema,
        response: { 202: operationSchema },
      },
    },
    async (req, reply) => {
      const vm = vmFor(ctx, req, req.params.vm);
      if (!['running', 'paused'].includes(vm.state))
        throw badRequest(`VM '${vm.name}' is ${vm.state}: checkpoints are taken of running or paused VMs`);
      // One at a time per VM: the quota is checked against what is stored, and captures queued behind each other
      // would all pass the check before the first one is counted.
      const busy = ctx.ops.list({ vmId: vm.id }).some((o) =>
        o.kind === 'checkpoint.create' && (o.status === 'pending' || o.status === 'running'));
      if (busy) throw conflict(`a checkpoint of VM '${vm.name}' is already being taken: wait for it to finish`);
      ctx.quotas.checkCheckpoint(vm);
      const op = ctx.ops.start('checkpoint.create', { vmId: vm.id, userId: requireUser(req).id }, async (o) => {
        ctx.quotas.checkCheckpoint(vm);
        const m = await cps.create(vm.id, { kind: 'manual', label: req.body?.label, progress: checkpointProgress(o) });
        return cps.list(vm.id).find((c) => c.id === m.id);
      });
      return reply.code(202).send(opView(op.id));
    },
  );

  r.get(
    '/api/vms/:vm/checkpoints/:id',
    {
      schema: {
        tags: ['checkpoints'],
        summary: 'One checkpoint',
        params: checkpointParams,
        response: { 200: checkpointDetailSchema },
      },
    },
    async (req): Promise<CheckpointDetail> => {
      const vm = vmFor(ctx, req, req.params.vm);
      const s = checkpointOf(vm, req.params.id);
      const m = cps.show(s.id);
      return {
        ...s,
        wasRunning: m.wasRunning,
        qemu: m.qemu,
        disks: m.disks.map((d) => ({ node: d.node, mode: d.mode, bytes: d.bytes })),
        ramBlocks: m.stream.blocks.map((b) => ({ id: b.id, length: b.length })),
      };
    },
  );

  r.post(
    '/api/vms/:vm/checkpoints/:id/restore',
    {
      schema: {
        tags: ['checkpoints'],
        summary:
          'Restore: in place (the VM is stopped and replaced; what happened since is lost), or with `as` into a new VM.' +
          ' Lazy by default (the guest runs once its device state is loaded, its RAM follows); `mode: "eager"` loads' +
          ' all RAM first. The operation ends when all RAM is in place; its result says how it went',
        params: checkpointParams,
        body: restoreSchema,
        response: { 202: operationSchema },
      },
    },
    async (req, reply) => {
      const user = requireUser(req);
      const vm = vmFor(ctx, req, req.params.vm);
      const c = checkpointOf(vm, req.params.id);
      if (vm.spec.template) throw conflict(`VM '${vm.name}' is a template: its disk is the base of linked clones`);
      if (req.body?.as) ctx.quotas.checkRestoreAs(user.id, vm);
      const target = req.body?.as ? await ctx.vms.createLike(vm.id, req.body.as, user.id) : vm;
      const kind = 'checkpoint.restore';
      const op = ctx.ops.start(kind, { vmId: target.id, userId: user.id }, async (o): Promise<RestoreResult> => {
        const mode = req.body?.eager ? 'eager' : (req.body?.mode ?? 'lazy');
        const fresh = target !== vm; // made for this restore: no full check first (restore.ts: fresh)
        const res = await cps.restore(c.id, checkpointProgress(o), { targetVmId: target.id, mode, fresh });
        return {
          checkpoint: c.id, vm: target.name, mode: res.mode, ...(res.fallback ? { fallback: res.fallback } : {}),
          runningMs: res.runningMs, restoreMs: res.restoreMs, verifyMs: res.verifyMs, streamBytes: res.streamBytes,
          ...(req.body?.as && target.spec.nics?.length ? { note: COPY_CARDS_NOTE } : {}),
        };
      });
      return reply.code(202).send(opView(op.id));
    },
  );

  r.post(
    '/api/checkpoints/restore-from-store',
    {
      schema: {
        tags: ['checkpoints'],
        summary:
          'Restore a checkpoint another server uploaded to object storage (its --checkpoint-store) as a new VM here, ' +
          'owned by the caller: the seed of failover. Admins only (the server reaches the URL with its own AWS ' +
          'credentials). An operation; its result says how it went',
        body: restoreFromStoreSchema,
        response: { 202: operationSchema },
      },
    },
    async (req, reply) => {
      const user = requireAdmin(req);
      const b = req.body;
      const op = ctx.ops.start('checkpoint.restore', { userId: user.id }, async (o): Promise<RestoreResult> => {
        const { vm, result: res } = await cps.restoreFromStore(b.url, {
          vm: b.vm, id: b.id, as: b.as, ownerId: user.id, mode: b.mode, progress: checkpointProgress(o),
          networks: (names) => ctx.networks.forNewVm(user, names),
        });
        return {
          checkpoint: b.id, vm: vm.name, mode: res.mode, ...(res.fallback ? { fallback: res.fallback } : {}),
          runningMs: res.runningMs, restoreMs: res.restoreMs, verifyMs: res.verifyMs, streamBytes: res.streamBytes,
        };
      });
      return reply.code(202).send(opView(op.id));
    },
  );

  r.delete(
    '/api/vms/:vm/checkpoints/:id',
    {
      schema: {
        tags: ['checkpoints'],
        summary: 'Delete a checkpoint (its disk changes merge into the next one)',
        params: checkpointParams,
        response: { 204: noContentSchema },
      },
    },
    async (req, reply) => {
      const vm = vmFor(ctx, req, req.params.vm);
      const id = checkpointOf(vm, req.params.id).id;
      await asOperation('checkpoint.delete', vm, req, () => cps.delete([id]));
      return reply.code(204).send(null);
    },
  );

  /** A broken checkpoint's problems in a line: disk problems in full, objects counted. */
  const describe = (what: string[]) => {
    const objects = what.filter((w) => !w.startsWith('disk '));
    return [...what.filter((w) => w.startsWith('disk ')), ...(objects.length ? [`${objects.length} objects missing or corrupt`] : [])]
      .join('; ');
  };

  r.post(
    '/api/vms/:vm/checkpoints/verify',
    {
      schema: {
        tags: ['checkpoints'],
        summary:
          "Check every hash of the VM's checkpoints (or of one, with `id`) and their disk images; an operation (admins: it reads the whole store)",
        params: vmParams,
        body: verifySchema,
        response: { 202: operationSchema },
      },
    },
    async (req, reply) => {
      // Verifying reads every object the VM's checkpoints name (each once): minutes of disk and CPU, so for admins
      // only.
      requireAdmin(req);
      const vm = vmFor(ctx, req, req.params.vm);
      const ids = req.body?.id ? [checkpointOf(vm, req.body.id).id] : cps.list(vm.id).map((c) => c.id);
      const op = ctx.ops.start('checkpoint.verify', { vmId: vm.id, userId: requireUser(req).id }, async (o) => {
        o.progress(0, 1, 'verifying');
        const rep = await cps.verify(ids);
        const broken = Object.fromEntries(Object.entries(rep.broken).filter(([id]) => ids.includes(id)));
        const ok = Object.keys(broken).length === 0;
        const diskImages = ids.reduce((n, id) => n + cps.show(id).disks.length, 0);
        const result: VerifyResult = { ok, checked: ids, broken, objects: rep.objects, diskImages };
        o.progress(1, 1, result.ok ? 'all hashes match' : 'corrupt data found');
        if (!result.ok)
          throw new Error(
            `corrupt checkpoints: ${Object.entries(broken).map(([id, what]) => `${id} (${describe(what)})`).join(', ')}`,
          );
        return result;
      });
      return reply.code(202).send(opView(op.id));
    },
  );

  r.post(
    '/api/vms/:vm/checkpoints/prune',
    {
      schema: {
        tags: ['checkpoints'],
        summary:
          "Apply retention rules (the schedule's, or those given); dryRun lists what would go. Manual checkpoints are never pruned.",
        params: vmParams,
        body: pruneSchema,
        response: { 200: pruneResultSchema },
      },
    },
    async (req) => {
      const vm = vmFor(ctx, req, req.params.vm);
      const rules = req.body.rules ?? ctx.schedules.get(vm.id)?.rules;
      if (!rules) throw badRequest(`VM '${vm.name}' has no schedule: give retention rules`);
      const prune = () => cps.prune(vm.id, rules, { dryRun: req.body.dryRun });
      return {
        ...(await (req.body.dryRun ? prune() : asOperation('checkpoint.prune', vm, req, prune))),
        dryRun: req.body.dryRun,
      };
    },
  );

  const scheduleView = (req: FastifyRequest, vm: VmRecord) => {
    const s = ctx.schedules.get(vm.id);
    if (!s) throw notFound(`VM '${vm.name}' has no checkpoint schedule`);
    const { vmId: _vmId, ...rest } = s;
    return { vm: vm.name, ...rest };
  };
  r.get(
    '/api/vms/:vm/checkpoint-schedule',
    {
      schema: {
        tags: ['checkpoints'],
        summary: "The VM's checkpoint schedule",
        params: vmParams,
        response: { 200: scheduleSchema },
      },
    },
    async (req) => scheduleView(req, vmFor(ctx, req, req.params.vm)),
  );
  r.put(
    '/api/vms/:vm/checkpoint-schedule',
    {
      schema: {
        tags: ['checkpoints'],
        summary:
          'Set the schedule: every = interval (30s, 5m, 2h, 1d) or cron expression; retention rules for scheduled checkpoints',
        params: vmParams,
        body: scheduleSetSchema,
        response: { 200: scheduleSchema },
      },
    },
    async (req) => {
      const vm = vmFor(ctx, req, req.params.vm);
      const { every, store, ...rules } = req.body;
      if (store !== undefined && (store ?? null) !== (ctx.schedules.get(vm.id)?.store ?? null)) {
        // The server reaches the store with its own credentials: where checkpoints go is an admin's choice.
        if (requireUser(req).role !== 'admin') throw forbidden('only admins choose the store a schedule uploads to');
        if (store) {
          try {
            parseStoreUrl(store);
          } catch (e) {
            throw badRequest((e as Error).message);
          }
        }
      }
      ctx.schedules.set(vm.id, every, rules, store === undefined ? undefined : store || null);
      return scheduleView(req, vm);
    },
  );
  r.delete(
    '/api/vms/:vm/checkpoint-schedule',
    {
      schema: {
        tags: ['checkpoints'],
        summary: 'Stop taking scheduled checkpoints',
        params: vmParams,
        response: { 204: noContentSchema },
      },
    },
    async (req, reply) => {
      ctx.schedules.remove(vmFor(ctx, req, req.params.vm).id);
      return reply.code(204).send(null);
    },
  );
}
