// Quotas through the API: everyone reads their own limits and usage; admins read and set anyone's.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { forbidden, notFound } from '../../errors.ts';
import { requireAdmin, requireUser } from '../auth/plugin.ts';
import type { User } from '../auth/users.ts';
import type { ServerContext } from '../context.ts';
import { errorSchema, quotaSchema, quotaSetSchema, quotaUserParams } from '../../api/index.ts';

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
    { schema: { tags: ['users'], summary: 'Your limits and what you use now', response: { 200: quotaSchema } } },
    async (req) => ctx.quotas.view(requireUser(req)),
  );
  r.get(
    '/api/users/:name/quota',
    {
      schema: {
        tags: ['users'],
        summary: "A user's limits and usage (admin, or the user)",
        params: quotaUserParams,
        response: { 200: quotaSchema, 403: errorSchema, 404: errorSchema },
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
        params: quotaUserParams,
        body: quotaSetSchema,
        response: { 200: quotaSchema, 403: errorSchema, 404: errorSchema },
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
        params: quotaUserParams,
        response: { 200: quotaSchema, 403: errorSchema, 404: errorSchema },
      },
    },
    async (req) => {
      requireAdmin(req);
      return ctx.quotas.reset(userNamed(req.params.name));
    },
  );
}
