// Serves the web UI that Vite builds into dist/web: hashed assets under /assets (cached for good), index.html for
// every other GET outside /api (the UI routes itself: /vms/NAME, /vms/NAME/console ...), never cached, so a new
// build is picked up by the next page load. Everything under /api keeps answering JSON, 404 included.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import fastifyStatic from '@fastify/static';

/** dist/web at the root of the repository, from the sources (src/server/web.ts) or the compiled build
 * (dist/node/server/web.js, scripts/build-node.js). */
export const DEFAULT_WEB_DIR = fileURLToPath(
  new URL(import.meta.url.endsWith('.js') ? '../../web/' : '../../dist/web/', import.meta.url),
);

// The UI loads only its own scripts and styles (xterm.js sets inline styles), talks only to this origin (ws: and
// wss: to the same host are covered by 'self'), and may not be framed by another site (clickjacking a console).
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
};

export async function registerWebUi(app: FastifyInstance, dir = DEFAULT_WEB_DIR): Promise<void> {
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    index: false, // '/' goes to the SPA fallback below, with the security headers and no-cache
    wildcard: true, // files looked up at request time: a build made after the server started is served
    dotfiles: 'deny', // the build stamp
    setHeaders(reply, path) {
      reply.headers({
        ...SECURITY_HEADERS,
        'cache-control': path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
      });
    },
  });

  const sendIndex = (reply: FastifyReply) => {
    const index = join(dir, 'index.html');
    reply.headers({ ...SECURITY_HEADERS, 'cache-control': 'no-cache' });
    if (!existsSync(index)) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send(
          'The Oriel web UI is not built. Run `npx vite build` (or `npm start`, which builds it) in the repository.\nThe API is at /api (see /api/openapi.json).\n',
        );
    }
    return reply.type('text/html; charset=utf-8').send(readFileSync(index));
  };

  app.get('/', (_req, reply) => sendIndex(reply));
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!;
    if (
      (req.method === 'GET' || req.method === 'HEAD') &&
      !path.startsWith('/api/') &&
      path !== '/api' &&
      !path.startsWith('/assets/')
    ) {
      return sendIndex(reply);
    }
    return reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${path}` });
  });
}
