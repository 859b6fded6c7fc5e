// Authentication for every request under /api, except health and login: a Bearer API token (CLI, scripts) or
// the session cookie (browser). A cookie-authenticated request that changes state must come from our own origin
// (the cookie is also SameSite=Strict; this is the second lock on the same door).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { forbidden, unauthorized } from '../../errors.ts';
import type { User, Users } from './users.ts';
import type { Credential } from './streams.ts';

export const SESSION_COOKIE = 'oriel_session';
const PUBLIC = new Set(['/api/health', '/api/auth/login']);

declare module 'fastify' {
  interface FastifyRequest {
    user: User | null;
    /** The session or API token the request was authenticated with (streams register under it). */
    credential: Credential | null;
  }
}

export function registerAuth(app: FastifyInstance, users: Users): void {
  app.decorateRequest('user', null);
  app.decorateRequest('credential', null);
  app.addHook('onRequest', async (req) => {
    // Judged on the route the router matched (it decodes: /%61pi/openapi.json is /api/openapi.json) and on the
    // decoded path, never on the raw URL.
    const route = req.routeOptions.url;
    const path = decodedPath(req.url);
    if (route !== undefined && PUBLIC.has(route)) return;
    if (!path.startsWith('/api/') && !route?.startsWith('/api/')) return;
    authenticate(req, users);
  });
  // Judged again once the body has arrived, just before the handler: a client may hold a request open (up to the
  // request timeout) and send its body after its token was revoked, its password reset or its account deleted.
  app.addHook('preHandler', async (req) => {
    if (req.credential) authenticate(req, users);
  });
}

/** Sets the request's user and credential from its API token or session cookie, or throws 401/403. */
function authenticate(req: FastifyRequest, users: Users): void {
  const header = req.headers.authorization;
  if (header) {
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    const auth = users.token(m ? m[1]! : ''); // 401 saying why when not valid
    req.user = auth.user;
    req.credential = auth.credential;
    return;
  }
  const cookie = req.cookies[SESSION_COOKIE];
  const auth = cookie ? users.session(cookie) : undefined;
  if (!auth) throw unauthorized(cookie ? 'your session has expired: sign in again' : undefined);
  if (!['GET', 'HEAD', 'OPTIONS'].includes(req.method) && !sameOrigin(req)) {
    throw forbidden('cross-site request refused: the Origin header does not match this server');
  }
  req.user = auth.user;
  req.credential = auth.credential;
}

function decodedPath(url: string): string {
  const raw = url.split('?')[0]!;
  try {
    return decodeURIComponent(raw);
  } catch {
    return '/api/'; // undecodable: treated as an API path, so it needs a caller like any other
  }
}

function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (!origin) return true; // not a browser cross-site request (browsers send Origin on every POST)
  try {
    // req.host is the Host header, or X-Forwarded-Host when the peer is a trusted proxy (--trust-proxy).
    return new URL(origin).host === req.host;
  } catch {
    return false;
  }
}

export function requireUser(req: FastifyRequest): User {
  if (!req.user) throw unauthorized();
  return req.user;
}

/** The credential of an authenticated request. */
export function requireCredential(req: FastifyRequest): Credential {
  if (!req.credential) throw unauthorized();
  return req.credential;
}

export function requireAdmin(req: FastifyRequest): User {
  const u = requireUser(req);
  if (u.role !== 'admin') throw forbidden('this needs an admin account');
  return u;
}
