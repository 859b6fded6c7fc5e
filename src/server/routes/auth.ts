import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { badRequest, forbidden, unauthorized } from '../../errors.ts';
import { requireCredential, requireUser, SESSION_COOKIE } from '../auth/plugin.ts';
import type { ServerContext } from '../context.ts';
import {
  errorSchema, loginResultSchema, loginSchema, noContentSchema, passwordChangeSchema, userSchema,
} from '../../api/index.ts';
import { LoginThrottle } from '../auth/throttle.ts';

export function authRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const throttle = new LoginThrottle();
  r.post('/api/auth/login', {
    schema: {
      tags: ['auth'],
      summary: 'Sign in: sets the session cookie; with tokenName, also issues an API token (shown once)',
      body: loginSchema,
      response: {
        200: loginResultSchema,
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
    const checked = await throttle.slot(() => ctx.users.authenticate(username, req.body.password));
    if (!checked) {
      throttle.failed(username, req.ip); // counted as a failure by begin(); its wait starts now
      throw unauthorized('wrong user name or password');
    }
    throttle.succeeded(username, req.ip);
    const { user } = checked;
    // A new session on every sign-in; the one this browser had (if any) ends (no session fixation).
    const old = req.cookies[SESSION_COOKIE];
    if (old) ctx.users.deleteSession(old);
    const signed = ctx.users.signIn(user.id, checked.passwordHash,
      req.body.tokenName ? { name: req.body.tokenName, expires: req.body.tokenExpires } : undefined);
    const s = signed.session;
    reply.setCookie(SESSION_COOKIE, s.token, {
      path: '/', httpOnly: true, sameSite: 'strict', secure: ctx.config.secureCookies || req.protocol === 'https',
      expires: s.expiresAt,
    });
    const token = signed.token;
    req.log.info({ user: user.name, token: !!token }, 'signed in');
    return { user, ...(token ? { token } : {}) };
  });

  r.post(
    '/api/auth/logout',
    {
      schema: {
        tags: ['auth'],
        summary: 'Sign out: ends the session of the cookie, or revokes the API token the request carries',
        response: { 204: noContentSchema },
      },
    },
    async (req, reply) => {
      const cred = requireCredential(req);
      if (cred.kind === 'token') ctx.users.tokens.revoke(cred.id);
      const cookie = req.cookies[SESSION_COOKIE];
      if (cookie) ctx.users.deleteSession(cookie);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      req.log.info({ user: req.user?.name, credential: cred.kind }, 'signed out');
      return reply.code(204).send(null);
    },
  );

  r.get(
    '/api/auth/me',
    { schema: { tags: ['auth'], summary: 'Who am I', response: { 200: userSchema } } },
    async (req) => requireUser(req),
  );

  // The owner changes their own password, proving the current one (throttled like a sign-in: a stolen session must
  // not become a way to guess it). The credential that asked stays valid; every other one ends (see README).
  r.post(
    '/api/me/password',
    {
      schema: {
        tags: ['auth'],
        summary: 'Change my password: ends my other sessions and API tokens (this one stays signed in)',
        body: passwordChangeSchema,
        response: { 204: noContentSchema, 403: errorSchema, 429: errorSchema },
      },
    },
    async (req, reply) => {
      const me = requireUser(req);
      const cred = requireCredential(req);
      try {
        throttle.begin(me.name, req.ip);
      } catch (e) {
        reply.header('retry-after', String((e as { retryAfterSec: number }).retryAfterSec));
        throw e;
      }
      const verified = await throttle.slot(() => ctx.users.checkPassword(me.id, req.body.currentPassword));
      // 403, not 401: the caller is signed in; a 401 would send the web UI to its sign-in page.
      if (!verified) {
        throttle.failed(me.name, req.ip);
        throw forbidden('the current password is wrong');
      }
      throttle.succeeded(me.name, req.ip);
      if (req.body.newPassword === req.body.currentPassword) {
        throw badRequest('the new password is the same as the current one');
      }
      await throttle.slot(() => ctx.users.setPassword(me.id, req.body.newPassword, cred, verified));
      req.log.info({ user: me.name }, 'password changed');
      return reply.code(204).send(null);
    },
  );
}
