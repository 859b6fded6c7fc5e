// API tokens: list, create, revoke. Each user sees and revokes their own; admins may list (?all=1) and revoke
// anyone's. A token of someone else is "not found" to an ordinary user, so ids cannot be probed.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { forbidden } from '../../errors.ts';
import { requireUser } from '../auth/plugin.ts';
import type { ApiTokenInfo } from '../auth/tokens.ts';
import type { ServerContext } from '../context.ts';
import {
  createdTokenSchema, errorSchema, noContentSchema, tokenCreateSchema, tokenIdParams, tokenListQuery, tokenSchema,
} from '../../api/index.ts';

export function tokenRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/api/tokens',
    {
      schema: {
        tags: ['auth'],
        summary: 'List my API tokens (admins: everyone\'s with ?all=1); secrets are never shown again',
        querystring: tokenListQuery,
        response: { 200: z.array(tokenSchema), 403: errorSchema },
      },
    },
    async (req) => {
      const me = requireUser(req);
      const all = req.query.all === '1' || req.query.all === 'true';
      if (all && me.role !== 'admin') throw forbidden('only admins may list the tokens of all users');
      const current = req.credential?.kind === 'token' ? req.credential.id : undefined;
      return ctx.users.tokens.list(all ? undefined : me.id).map((t) => ({ ...t, current: t.id === current }));
    },
  );
  r.post(
    '/api/tokens',
    {
      schema: {
        tags: ['auth'],
        summary: 'Create an API token; the secret is in this answer only',
        body: tokenCreateSchema,
        response: { 201: createdTokenSchema },
      },
    },
    async (req, reply) => {
      const t = ctx.users.tokens.create(requireUser(req).id, req.body.name, req.body.expires);
      req.log.info({ user: t.info.user, tokenId: t.info.id, expiresAt: t.info.expiresAt }, 'API token created');
      return reply.code(201).send({ token: t.token, info: { ...t.info, current: false } });
    },
  );
  r.delete(
    '/api/tokens/:id',
    {
      schema: {
        tags: ['auth'],
        summary: 'Revoke an API token (mine; admins: anyone\'s); streams opened with it are closed',
        params: tokenIdParams,
        response: { 204: noContentSchema, 404: errorSchema },
      },
    },
    async (req, reply) => {
      const me = requireUser(req);
      const t: ApiTokenInfo = ctx.users.tokens.revoke(req.params.id, me.role === 'admin' ? undefined : me.id);
      req.log.info({ by: me.name, user: t.user, tokenId: t.id }, 'API token revoked');
      return reply.code(204).send(null);
    },
  );
}
