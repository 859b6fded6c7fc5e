import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { unauthorized } from '../../errors.ts';
import { requireUser, SESSION_COOKIE } from '../auth/plugin.ts';
import type { ServerContext } from '../context.ts';
import { errorSchema, userSchema } from '../schemas.ts';
import { LoginThrottle } from '../auth/throttle.ts';

export function authRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const throttle = new LoginThrottle();
  r.post('/api/auth/login', {
    schema: {
      tags: ['auth'],
      summary: 'Sign in: sets the session cookie; with tokenName, also issues an API token (shown once)',
      body: z.object({
        username: z.string().min(1).max(200),
        password: z.string().min(1).max(1024),
        tokenName: z.string().min(1).max(100).optional(),
      }),
      response: {
        200: z.object({ user: userSchema, token: z.string().optional() }),
        401: errorSchema,
        429: errorSchema,
      },
    },
  }, async (req, reply) => {
    const { username } = req.body;
    try {
      throttle.begin(username, req.ip);
    } catch (e) {
      reply.header('retry-after', String((e as { retryAfterSec: number }).retryAfterSec));
      throw e;
    }
    const user = await throttle.slot(() => ctx.users.authenticate(username, req.body.password));
    if (!user) throw unauthorized('wrong user name or password'); // counted as a failure by begin()
    throttle.succeeded(username, req.ip);
    // A new session on every sign-in; the one this browser had (if any) ends (no session fixation).
    const old = req.cookies[SESSION_COOKIE];
    if (old) ctx.users.deleteSession(old);
    const s = ctx.users.createSession(user.id);
    reply.setCookie(SESSION_COOKIE, s.token, {
      path: '/', httpOnly: true, sameSite: 'strict', secure: ctx.config.secureCookies || req.protocol === 'https',
      expires: s.expiresAt,
    });
    const token = req.body.tokenName ? ctx.users.createToken(user.id, req.body.tokenName).token : undefined;
    req.log.info({ user: user.name, token: !!token }, 'signed in');
    return { user, ...(token ? { token } : {}) };
  });

  r.post(
    '/api/auth/logout',
    { schema: { tags: ['auth'], summary: 'Sign out (ends the session of the cookie)', response: { 204: z.null() } } },
    async (req, reply) => {
    const cookie = req.cookies[SESSION_COOKIE];
    if (cookie) ctx.users.deleteSession(cookie);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.code(204).send(null);
  },
  );

  r.get(
    '/api/auth/me',
    { schema: { tags: ['auth'], summary: 'Who am I', response: { 200: userSchema } } },
    async (req) => requireUser(req),
  );

  const tokenSchema = z.object({
    id: z.string(),
    name: z.string(),
    createdAt: z.string(),
    lastUsedAt: z.string().nullable(),
  });
  r.get(
    '/api/tokens',
    {
      schema: {
        tags: ['auth'],
        summary: 'List my API tokens (secrets are never shown again)',
        response: { 200: z.array(tokenSchema) },
      },
    },
    async (req) => ctx.users.tokens(requireUser(req).id),
  );
  r.post(
    '/api/tokens',
    {
      schema: {
        tags: ['auth'],
        summary: 'Create an API token; the secret is in this answer only',
        body: z.object({ name: z.string().min(1).max(100) }),
        response: { 201: z.object({ token: z.string(), info: tokenSchema }) },
      },
    },
    async (req, reply) => reply.code(201).send(ctx.users.createToken(requireUser(req).id, req.body.name)),
  );
  r.delete(
    '/api/tokens/:id',
    {
      schema: {
        tags: ['auth'],
        summary: 'Revoke one of my API tokens',
        params: z.object({ id: z.string() }),
        response: { 204: z.null() },
      },
    },
    async (req, reply) => {
      ctx.users.deleteToken(requireUser(req).id, req.params.id);
      return reply.code(204).send(null);
    },
  );
}
