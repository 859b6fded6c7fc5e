import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { forbidden } from '../../errors.ts';
import { requireUser } from '../auth/plugin.ts';
import type { ServerContext } from '../context.ts';
import type { Operation } from '../operations.ts';
import { operationListQuery, operationParams, operationSchema, operationWaitQuery } from '../../api/index.ts';
import { operationView } from '../views.ts';
import { vmFor } from './vms.ts';

/** Users see operations they started or that concern their VMs; admins see all. */
export function canSeeOperation(ctx: ServerContext, req: FastifyRequest, op: Operation): boolean {
  const u = requireUser(req);
  if (u.role === 'admin' || op.userId === u.id) return true;
  return !!op.vmId && ctx.vms.records.get(op.vmId)?.ownerId === u.id;
}

export function operationRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const view = (op: Operation) => operationView(op, ctx.users, ctx.vms);
  const visible = (req: FastifyRequest, id: string) => {
    const op = ctx.ops.get(id);
    if (!canSeeOperation(ctx, req, op)) throw forbidden(`operation ${id} is not yours`);
    return op;
  };

  r.get(
    '/api/operations',
    {
      schema: {
        tags: ['operations'],
        summary: 'Recent operations, newest first',
        querystring: operationListQuery,
        response: { 200: z.array(operationSchema) },
      },
    },
    async (req) => {
      const vmId = req.query.vm ? vmFor(ctx, req, req.query.vm).id : undefined;
      return ctx.ops
        .list({ vmId, limit: req.query.limit * 4 })
        .filter((op) => canSeeOperation(ctx, req, op))
        .slice(0, req.query.limit)
        .map(view);
    },
  );
  r.get(
    '/api/operations/:id',
    {
      schema: { tags: ['operations'], summary: 'One operation', params: operationParams, response: { 200: operationSchema } },
    },
    async (req) => view(visible(req, req.params.id)),
  );
  r.get(
    '/api/operations/:id/wait',
    {
      schema: {
        tags: ['operations'],
        summary: 'Answers when the operation has finished, or after timeoutSec with its current state',
        params: operationParams,
        querystring: operationWaitQuery,
        response: { 200: operationSchema },
      },
    },
    async (req) => {
      visible(req, req.params.id);
      return view(await ctx.ops.wait(req.params.id, req.query.timeoutSec * 1000));
    },
  );
  r.delete(
    '/api/operations/:id',
    {
      schema: {
        tags: ['operations'],
        summary: 'Cancel a running operation',
        params: operationParams,
        response: { 200: operationSchema },
      },
    },
    async (req) => {
      visible(req, req.params.id);
      return view(ctx.ops.cancel(req.params.id));
    },
  );
}
