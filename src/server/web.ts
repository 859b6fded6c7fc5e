// Serves the web UI that Vite builds into dist/web: hashed assets under /assets (cached for good), index.html for
// every other GET outside /api (the UI routes itself: /vms/NAME, /vms/NAME/console ...), never cached, so a new
// build is picked up by the next page load. Everything under /api keeps answering JSON, 404 included.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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

/** How index.html loads public/early-link.js; served, the script is inlined there instead. */
const EARLY_LINK_TAG = '<script src="/early-link.js"></script>';

/**
 * index.html as served: the console's early-link script (public/early-link.js) inlined, so a console page's SPICE
 * sockets open without first waiting for one more request, and the Content-Security-Policy allowing exactly that
 * script by its SHA-256 (no 'unsafe-inline'). Read again when either file changes (a new build).
 */
function indexPage(dir: string): () => { html: Buffer; csp: string } {
  let cached: { key: string; html: Buffer; csp: string } | undefined;
  return () => {
    const index = join(dir, 'index.html');
    const early = join(dir, 'early-link.js');
    const hasEarly = existsSync(early);
    const key = `${statSync(index).mtimeMs}:${hasEarly ? statSync(early).mtimeMs : 0}`;
    if (cached?.key === key) return cached;
    let html = readFileSync(index, 'utf8');
    let csp = SECURITY_HEADERS['content-security-policy']!;
    const code = hasEarly ? readFileSync(early, 'utf8') : '';
    if (html.includes(EARLY_LINK_TAG) && code && !/<\/script/i.test(code)) {
      html = html.replace(EARLY_LINK_TAG, () => `<script>${code}</script>`);
      const hash = createHash('sha256').update(code).digest('base64');
      csp = csp.replace("script-src 'self'", `script-src 'self' 'sha256-${hash}'`);
    }
    cached = { key, html: Buffer.from(html), csp };
    return cached;
  };
}

/** `onPage`: told of each page served (the UI's routes), before it is sent. */
export async function registerWebUi(
  app: FastifyInstance, dir = DEFAULT_WEB_DIR, onPage?: (req: FastifyRequest) => void,
): Promise<void> {
  const page = indexPage(dir);
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
    const { html, csp } = page();
    reply.header('content-security-policy', csp);
    return reply.type('text/html; charset=utf-8').send(html);
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
      onPage?.(req);
      return sendIndex(reply);
    }
    return reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${path}` });
  });
}
