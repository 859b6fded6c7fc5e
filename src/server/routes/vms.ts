import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { badRequest, forbidden } from '../../errors.ts';
import { tail } from '../../vm/serial-log.ts';
import type { VmRecord } from '../../vm/records.ts';
import { requireUser } from '../auth/plugin.ts';
import { mayUseVm } from '../auth/vm-access.ts';
import type { ServerContext } from '../context.ts';
import {
  errorSchema, execResultSchema, execSchema, logQuery, logSchema, noContentSchema, vmActionSchema, vmCreateBodySchema,
  vmNetworksSchema, vmParams, vmSchema, type VmAction,
} from '../../api/index.ts';
import { vmNics } from '../networks/vm-nics.ts';
import { vmView } from '../views.ts';

/** The VM named in the URL, if the caller may use it: its owner or an admin. */
export function vmFor(ctx: ServerContext, req: FastifyRequest, ref: string): VmRecord {
  const user = requireUser(req);
  const vm = ctx.vms.get(ref);
  if (!mayUseVm(user, vm)) throw forbidden(`VM '${ref}' belongs to another user`);
  return vm;
}

export function vmRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const view = (vm: VmRecord) => ({ ...vmView(vm, ctx), networks: vmNics(ctx, vm) });

  r.get(
    '/api/vms',
    { schema: { tags: ['vms'], summary: 'List VMs (yours; all for admins)', response: { 200: z.array(vmSchema) } } },
    async (req) => {
    const u = requireUser(req);
    return ctx.vms.list(u.role === 'admin' ? undefined : u.id).map(view);
  },
  );

  r.post(
    '/api/vms',
    {
      schema: {
        tags: ['vms'],
        summary: 'Create a VM (stopped) from a built image, a disk image path, or a kernel and initrd',
        // Validated by the VM manager, so the API, the CLI and the demo share one set of rules and messages.
        body: vmCreateBodySchema,
        response: { 201: vmSchema, 400: errorSchema, 409: errorSchema },
      },
    },
    async (req, reply) => {
      const user = requireUser(req);
      const { networks: refs, ...body } = req.body;
      const networks = ctx.networks.forNewVm(user, networkRefs(refs));
      const vm = await ctx.vms.create(body, user.id, { hostPaths: user.role === 'admin', networks });
      try {
        ctx.networks.assignLeases(vm);
      } catch (e) {
        await ctx.vms.delete(vm.id);
        throw e;
      }
      return reply.code(201).send(view(vm));
    },
  );

  r.get('/api/vms/:vm', { schema: { tags: ['vms'], summary: 'One VM', params: vmParams, response: { 200: vmSchema } } },
    async (req) => view(vmFor(ctx, req, req.params.vm)));

  r.delete(
    '/api/vms/:vm',
    {
      schema: {
        tags: ['vms'],
        summary: 'Delete a stopped VM, its disk overlay and its checkpoints',
        params: vmParams,
        response: { 204: noContentSchema },
      },
    },
    async (req, reply) => {
      const vm = vmFor(ctx, req, req.params.vm);
      // A deleted VM takes its checkpoints along (only once it may be deleted: stopped or crashed).
      if (vm.state === 'stopped' || vm.state === 'crashed')
        await ctx.checkpoints.delete(ctx.checkpoints.list(vm.id).map((c) => c.id));
      await ctx.vms.delete(vm.id);
      return reply.code(204).send(null);
    },
  );

  const action = (
    name: VmAction,
    summary: string,
    fn: (id: string, body: { timeoutSec?: number }) => Promise<VmRecord>,
  ) =>
    r.post(
      `/api/vms/:vm/${name}`,
      {
        schema: {
          tags: ['vms'],
          summary,
          params: vmParams,
          body: vmActionSchema,
          response: { 200: vmSchema, 409: errorSchema },
        },
      },
      async (req) => view(await fn(vmFor(ctx, req, req.params.vm).id, req.body ?? {})),
    );

  action('start', 'Start a stopped or crashed VM', (id) => ctx.vms.start(id));
  action('stop', 'ACPI shutdown, forced after timeoutSec (default from configuration)', (id, b) =>
    ctx.vms.stop(id, b.timeoutSec),
  );
  action('force-stop', 'Stop at once (like pulling the plug)', (id) => ctx.vms.forceStop(id));
  action('pause', 'Pause the vCPUs', (id) => ctx.vms.pause(id));
  action('resume', 'Resume a paused VM', (id) => ctx.vms.resume(id));
  action('reset', 'Hard reset (like the reset button)', (id) => ctx.vms.reset(id));

  r.post(
    '/api/vms/:vm/exec',
    {
      schema: {
        tags: ['vms'],
        summary: 'Run a command in the guest (images with a command shell); waits for the guest to be ready',
        params: vmParams,
        body: execSchema,
        response: { 200: execResultSchema },
      },
    },
    async (req) => ctx.vms.exec(vmFor(ctx, req, req.params.vm).id, req.body.argv, req.body.timeoutSec * 1000),
  );

  r.get(
    '/api/vms/:vm/log',
    {
      schema: {
        tags: ['vms'],
        summary: "The guest's serial console output (this boot) or QEMU's own log",
        params: vmParams,
        querystring: logQuery,
        response: { 200: logSchema },
      },
    },
    async (req) => {
      const p = ctx.vms.paths(vmFor(ctx, req, req.params.vm));
      const file = req.query.source === 'serial' ? p.serialLog : p.qemuLog;
      return { source: req.query.source, text: tail(file, req.query.lines, 4 * 1024 * 1024) };
    },
  );
}

/** `networks` of a create request: absent, or a list of network names (a card on each). */
function networkRefs(v: unknown): string[] {
  if (v === undefined) return [];
  const refs = vmNetworksSchema.safeParse(v);
  if (!refs.success) throw badRequest('networks must be a list of network names');
  return refs.data;
}
