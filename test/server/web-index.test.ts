// The web UI's page as served (src/server/web.ts): the console's early-link script inlined, allowed by the
// Content-Security-Policy through its SHA-256 only (no 'unsafe-inline'); a build without it is served as it is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { registerWebUi } from '../../src/server/web.ts';

test('index.html inlines early-link.js, allowed by its hash; the script file alone is not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'oriel-web-index-'));
  const app = Fastify();
  try {
    const code = "window.early = 'a</b>';\n";
    writeFileSync(join(dir, 'index.html'), '<head><script src="/early-link.js"></script></head><body>x</body>');
    writeFileSync(join(dir, 'early-link.js'), code);
    await registerWebUi(app, dir);
    const r = await app.inject({ method: 'GET', url: '/vms/a/console' });
    assert.equal(r.statusCode, 200);
    assert.ok(r.body.includes(`<script>${code}</script>`), r.body);
    const csp = String(r.headers['content-security-policy']);
    const hash = createHash('sha256').update(code).digest('base64');
    assert.match(csp, new RegExp(`script-src 'self' 'sha256-${hash.replace(/[+/=]/g, '\\$&')}';`));
    assert.doesNotMatch(csp, /script-src[^;]*unsafe-inline/);

    // A script that would end the inline element early is not inlined.
    writeFileSync(join(dir, 'early-link.js'), "document.write('</script>');\n");
    const later = new Date(Date.now() + 5000);
    utimesSync(join(dir, 'early-link.js'), later, later);
    const r2 = await app.inject({ method: 'GET', url: '/' });
    assert.ok(r2.body.includes('<script src="/early-link.js"></script>'), r2.body);
    assert.match(String(r2.headers['content-security-policy']), /script-src 'self';/);
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
