// API tokens: list, create, revoke. Each user sees and revokes their own; admins may list (?all=1) and revoke
// anyone's. A token of someone else is "not found" to an ordinary user, so ids cannot be probed.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { forbidden } from '../../errors.ts';
import { requireUser } from '../auth/plugin.ts';
import { DEFAULT_TOKEN_EXPIRY, tokenExpirySchema, type ApiTokenInfo } from '../auth/tokens.ts';
import type { ServerContext } from '../context.ts';
import { errorSchema } from '../schemas.ts';

export const tokenSchema = z.object({
  id: z.string(),
  name: z.string(),
  user: z.string(),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable(),
  expiresAt: z.string().nullable().describe('null: never expires'),
  expired: z.boolean(),
  current: z.boolean().describe('the token this request was made with'),
});

export function tokenRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/api/tokens',
    {
      schema: {
        tags: ['auth'],
        summary: 'List my API tokens (admins: everyone\'s with ?all=1); secrets are never shown again',
        querystring: z.object({ all: z.enum(['0', '1', 'true', 'false']).optional() }),
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
        body: z.object({
          name: z.string().min(1).max(100),
          expires: tokenExpirySchema
            .optional()
            .describe(`lifetime: 30s, 12h, 90d, ... or "never" (default ${DEFAULT_TOKEN_EXPIRY})`),
        }),
        response: { 201: z.object({ token: z.string(), info: tokenSchema }) },
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
        params: z.object({ id: z.string().max(100) }),
        response: { 204: z.null(), 404: errorSchema },
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
