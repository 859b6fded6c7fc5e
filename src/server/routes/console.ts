import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { consoleTicketSchema, vmParams } from '../../api/index.ts';
import { requireCredential } from '../auth/plugin.ts';
import type { ServerContext } from '../context.ts';
import type { ConsoleTickets } from '../console/tickets.ts';
import type { ScreenPreviews } from '../console/screen-preview.ts';
import { vmFor } from './vms.ts';

export function consoleRoutes(
  app: FastifyInstance, ctx: ServerContext, tickets: ConsoleTickets, previews: ScreenPreviews,
): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post(
    '/api/vms/:vm/console-ticket',
    {
      schema: {
        tags: ['console'],
        summary:
          'A single-use ticket (60 s) for one console session: open ws(s)://HOST/api/vms/{vm}/spice?ticket=... for each SPICE channel (the main channel first)',
        params: vmParams,
        response: { 201: consoleTicketSchema },
      },
    },
    async (req, reply) => {
      const vm = vmFor(ctx, req, req.params.vm);
      const t = tickets.issue(requireCredential(req), vm.id);
      return reply.code(201).send({ ...t, path: `/api/vms/${encodeURIComponent(vm.name)}/spice?ticket=${t.ticket}` });
    },
  );

  r.get(
    '/api/vms/:vm/console/screen',
    {
      schema: {
        tags: ['console'],
        summary:
          "The VM's screen now, as PNG (QEMU's screendump; at most 1 s old): the console page shows it while SPICE links",
        params: vmParams,
        produces: ['image/png'],
      },
    },
    async (req, reply) => {
      const vm = vmFor(ctx, req, req.params.vm);
      const png = await previews.get(vm);
      return reply.type('image/png')
        .headers({ 'cache-control': 'no-store', 'cross-origin-resource-policy': 'same-origin' }).send(png);
    },
  );
}
