import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { conflict, notFound } from '../../errors.ts';
import { requireAdmin } from '../auth/plugin.ts';
import type { ServerContext } from '../context.ts';
import {
  noContentSchema, passwordResetSchema, userCreateSchema, userNameParams, userSchema,
} from '../../api/index.ts';

export function userRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/api/users',
    { schema: { tags: ['users'], summary: 'List accounts (admin)', response: { 200: z.array(userSchema) } } },
    async (req) => {
    requireAdmin(req);
    return ctx.users.list();
  },
  );
  r.post(
    '/api/users',
    {
      schema: {
        tags: ['users'],
        summary: 'Create an account (admin)',
        body: userCreateSchema,
        response: { 201: userSchema },
      },
    },
    async (req, reply) => {
      requireAdmin(req);
      const u = await ctx.users.create(req.body.name, req.body.password, req.body.role);
      req.log.info({ user: u.name, role: u.role }, 'user created');
      return reply.code(201).send(u);
    },
  );
  r.put(
    '/api/users/:name/password',
    {
      schema: {
        tags: ['users'],
        summary: 'Set another user\'s password (admin): ends all their sessions and API tokens',
        params: userNameParams,
        body: passwordResetSchema,
        response: { 204: noContentSchema },
      },
    },
    async (req, reply) => {
      const me = requireAdmin(req);
      // Your own password needs the current one (POST /api/me/password): a stolen session must not be enough.
      if (me.name === req.params.name) throw conflict('change your own password with POST /api/me/password');
      const u = ctx.users.byName(req.params.name);
      if (!u) throw notFound(`no user named '${req.params.name}'`);
      await ctx.users.setPassword(u.id, req.body.password);
      req.log.info({ user: u.name, by: me.name }, 'password reset');
      return reply.code(204).send(null);
    },
  );
  r.delete(
    '/api/users/:name',
    {
      schema: {
        tags: ['users'],
        summary: 'Delete an account (admin)',
        params: userNameParams,
        response: { 204: noContentSchema },
      },
    },
    async (req, reply) => {
      const me = requireAdmin(req);
      if (me.name === req.params.name) throw conflict('you cannot delete your own account');
      ctx.users.delete(req.params.name);
      return reply.code(204).send(null);
    },
  );
}
