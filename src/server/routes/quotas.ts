// Quotas through the API: everyone reads their own limits and usage; admins read and set anyone's.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { forbidden, notFound } from '../../errors.ts';
import { requireAdmin, requireUser } from '../auth/plugin.ts';
import type { User } from '../auth/users.ts';
import type { ServerContext } from '../context.ts';
import { errorSchema } from '../schemas.ts';

const limit = (what: string) => z.number().int().nullable().describe(`${what}; null: unlimited`);
export const quotaLimitsSchema = z.object({
  vms: limit('VMs the user may own'),
  memoryMiB: limit('MiB of memory of the running (and paused) VMs'),
  cpus: limit('vCPUs of the running (and paused) VMs'),
  diskBytes: limit("bytes of the provisioned (virtual) size of the user's VM disks"),
  checkpointBytes: limit("bytes the user's checkpoints hold"),
});
const usageSchema = z.object({
  vms: z.number(), memoryMiB: z.number(), cpus: z.number(), diskBytes: z.number(), checkpointBytes: z.number(),
});
export const quotaViewSchema = z.object({
  user: z.string(),
  role: z.enum(['admin', 'user']),
  custom: z.boolean().describe('the user has limits of their own (false: the defaults apply)'),
  limits: quotaLimitsSchema,
  usage: usageSchema,
});

const settable = (what: string, max: number) =>
  z.number().int().min(0).max(max).nullable().optional().describe(`${what}; null: unlimited; omitted: unchanged`);
const putBody = z
  .object({
    vms: settable('VMs', 100_000),
    memoryMiB: settable('MiB of running memory', 2 ** 31),
    cpus: settable('running vCPUs', 1_000_000),
    diskBytes: settable('bytes of provisioned disk', Number.MAX_SAFE_INTEGER),
    checkpointBytes: settable('bytes of checkpoints', Number.MAX_SAFE_INTEGER),
  })
  .strict();
const nameParams = z.object({ name: z.string().max(64) });

export function quotaRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const userNamed = (name: string): User => {
    const u = ctx.users.byName(name);
    if (!u) throw notFound(`no user named '${name}'`);
    return u;
  };
  /** Admins may look at anyone's; a user at their own only. */
  const readable = (req: FastifyRequest, name: string): User => {
    const me = requireUser(req);
    if (me.role !== 'admin' && me.name !== name) throw forbidden("only an admin may see another user's quota");
    return userNamed(name);
  };

  r.get(
    '/api/me/quota',
    { schema: { tags: ['users'], summary: 'Your limits and what you use now', response: { 200: quotaViewSchema } } },
    async (req) => ctx.quotas.view(requireUser(req)),
  );
  r.get(
    '/api/users/:name/quota',
    {
      schema: {
        tags: ['users'],
        summary: "A user's limits and usage (admin, or the user)",
        params: nameParams,
        response: { 200: quotaViewSchema, 403: errorSchema, 404: errorSchema },
      },
    },
    async (req) => ctx.quotas.view(readable(req, req.params.name)),
  );
  r.put(
    '/api/users/:name/quota',
    {
      schema: {
        tags: ['users'],
        summary: "Set a user's limits (admin): given fields replace the current ones",
        params: nameParams,
        body: putBody,
        response: { 200: quotaViewSchema, 403: errorSchema, 404: errorSchema },
      },
    },
    async (req) => {
      const me = requireAdmin(req);
      const u = userNamed(req.params.name);
      const v = ctx.quotas.set(u, req.body);
      req.log.info({ by: me.name, user: u.name, limits: v.limits }, 'quota set');
      return v;
    },
  );
  r.delete(
    '/api/users/:name/quota',
    {
      schema: {
        tags: ['users'],
        summary: "Give a user the default limits again (admin)",
        params: nameParams,
        response: { 200: quotaViewSchema, 403: errorSchema, 404: errorSchema },
      },
    },
    async (req) => {
      requireAdmin(req);
      return ctx.quotas.reset(userNamed(req.params.name));
    },
  );
}
