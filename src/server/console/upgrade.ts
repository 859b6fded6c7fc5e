// WebSocket upgrades under /api/vms/{vm}/{kind}: one listener on the HTTP server routes each to its console
// (spice, serial) and refuses everything else with an HTTP error, before any WebSocket exists. The checks every
// console shares live here: the Origin, the caller, and the caller's right to the VM.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { OrielError, conflict, forbidden, notFound } from '../../errors.ts';
import { SESSION_COOKIE } from '../auth/plugin.ts';
import type { User } from '../auth/users.ts';
import type { Credential } from '../auth/streams.ts';
import type { ServerContext } from '../context.ts';
import type { VmRecord } from '../../vm/records.ts';
import { requestHost, type ProxyTrust } from '../transport/proxy-trust.ts';

export type VmUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, vmRef: string) => void;

const PATH_RE = /^\/api\/vms\/([^/]+)\/([a-z]+)$/;

/** The host each upgrade request was addressed to (X-Forwarded-Host only from a trusted proxy), for checkOrigin. */
const hosts = new WeakMap<IncomingMessage, string | undefined>();

export function registerUpgrades(
  app: FastifyInstance,
  handlers: Record<string, VmUpgrade>,
  trust?: ProxyTrust,
): void {
  // An allow-list: a Map, so that a path such as /api/vms/x/constructor finds nothing inherited.
  const routes = new Map(Object.entries(handlers));
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Everything inside the try: a malformed URL (`GET //[`) or name (`%E0`) is a refusal, never an exception that
    // reaches the HTTP server's event emitter and ends the process.
    try {
      socket.on('error', () => socket.destroy());
      hosts.set(req, requestHost(req, trust));
      const m = PATH_RE.exec(new URL(req.url ?? '/', 'http://localhost').pathname);
      const handle = m ? routes.get(m[2]!) : undefined;
      if (!m || !handle) return refuse(socket, notFound('no WebSocket endpoint here'));
      handle(req, socket, head, decodeURIComponent(m[1]!));
    } catch (e) {
      if (!(e instanceof OrielError) && !(e instanceof URIError) && !(e instanceof TypeError)) {
        app.log.error({ err: e }, 'WebSocket upgrade failed');
      }
      refuse(socket, e instanceof OrielError ? e : new OrielError(400, 'malformed request', 'bad_request'));
    }
  });
}

/** Answers an upgrade request with an HTTP error and closes the connection: no WebSocket, nothing reaches QEMU. */
export function refuse(socket: Duplex, err: OrielError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: err.code, message: err.message });
  socket.end(
    `HTTP/1.1 ${err.status} ${err.code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  // The server allows half-open sockets: a client that never closes its side would hold this one for good.
  setTimeout(() => socket.destroy(), 2000).unref();
}

/** A browser's upgrade must come from our own pages (WebSockets are not bound by the same-origin policy). */
export function checkOrigin(req: IncomingMessage): void {
  const origin = req.headers.origin;
  if (!origin) return;
  let host: string | undefined;
  try { host = new URL(origin).host; } catch { /* malformed */ }
  const expected = hosts.has(req) ? hosts.get(req) : req.headers.host;
  if (host !== expected) throw forbidden('cross-site console connection refused: bad Origin');
}

export interface Caller { user: User; credential: Credential }

/** The caller, from an API token (a bad one is refused, saying why) or the session cookie; undefined if neither. */
export function upgradeCaller(app: FastifyInstance, ctx: ServerContext, req: IncomingMessage): Caller | undefined {
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  if (bearer) return ctx.users.token(bearer);
  const cookie = req.headers.cookie ? app.parseCookie(req.headers.cookie)[SESSION_COOKIE] : undefined;
  return cookie ? ctx.users.session(cookie) : undefined;
}

/** The VM, if `user` (when known) may use it and it runs. */
export function liveVmFor(ctx: ServerContext, ref: string, user: User | undefined, what: string): VmRecord {
  const vm = ctx.vms.get(ref);
  if (user && user.role !== 'admin' && vm.ownerId !== user.id) throw forbidden(`VM '${ref}' belongs to another user`);
  if (!['running', 'paused'].includes(vm.state))
    throw conflict(`VM '${vm.name}' is ${vm.state}: its ${what} is not available`);
  return vm;
}
