// Consoles over TLS with a real tiny guest: a browser signed in over https (accepting the test certificate) gets
// serial output through a wss:// WebSocket, and the CLI's console (SPICE over wss) works with --fingerprint, with
// the pinned certificate checked on the WebSocket too.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { PNG } from 'pngjs';
import { ADMIN_PASSWORD } from '../helpers/server.ts';
import { ensureTinyImage } from '../helpers/images.ts';
import {
  httpsReq, makeTestCerts, runCli, startHttpsServer, type HttpsServer, type TestCerts,
} from '../helpers/tls.ts';
import { ensureWebBuild, launchChromium, signIn } from '../web/helpers.ts';

declare const location: { host: string; protocol: string };
declare const document: any;

const VM = 'tlsvm';

describe('consoles over TLS', () => {
  let certs: TestCerts;
  let s: HttpsServer;
  let token: string;
  let browser: Browser | undefined;
  const scratch = mkdtempSync(join(tmpdir(), 'oriel-tls-con-'));

  before(async () => {
    ensureWebBuild();
    await ensureTinyImage();
    certs = makeTestCerts();
    s = await startHttpsServer(certs);
    const login = await httpsReq(`${s.url}/api/auth/login`, certs.ca, 'POST',
      { username: 'admin', password: ADMIN_PASSWORD, tokenName: 't' });
    token = login.body.token;
    const auth = { authorization: `Bearer ${token}` };
    const made = await httpsReq(`${s.url}/api/vms`, certs.ca, 'POST', { name: VM, image: 'tiny', memoryMiB: 160 }, auth);
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.equal((await httpsReq(`${s.url}/api/vms/${VM}/start`, certs.ca, 'POST', {}, auth)).body.state, 'running');
    const booted = await httpsReq(`${s.url}/api/vms/${VM}/exec`, certs.ca, 'POST', { argv: ['true'], timeoutSec: 60 }, auth);
    assert.equal(booted.status, 200, JSON.stringify(booted.body));
  });
  after(async () => {
    await browser?.close();
    await s?.destroy();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  });

  test('the browser signs in over https and reads the serial console through wss', async () => {
    browser = await launchChromium();
    const context = await browser.newContext({ ignoreHTTPSErrors: true }); // the test CA is not the browser's
    const page = await context.newPage();
    await signIn(page, s.url, 'admin', ADMIN_PASSWORD);
    const got = await page.evaluate(
      (vm) =>
        new Promise<string>((resolve, reject) => {
          const ws = new WebSocket(`wss://${location.host}/api/vms/${vm}/serial`);
          ws.binaryType = 'arraybuffer';
          let text = '';
          const timer = setTimeout(() => reject(new Error(`no answer; got ${JSON.stringify(text)}`)), 20_000);
          ws.onopen = () => ws.send('echo tls-$((6*7))\r');
          ws.onmessage = (e) => {
            text += new TextDecoder().decode(e.data as ArrayBuffer);
            if (text.includes('tls-42')) {
              clearTimeout(timer);
              ws.close();
              resolve(`${location.protocol} ${text}`);
            }
          };
          ws.onclose = (e) => reject(new Error(`closed ${e.code}; got ${JSON.stringify(text)}`));
        }),
      VM,
    );
    assert.match(got, /^https: /);
    assert.match(got, /tls-42/);
    // The page's own serial console connects the same way (its URL follows the page's scheme).
    await page.goto(`${s.url}/vms/${VM}?tab=serial`);
    await page.waitForSelector('#serial-status[data-status=connected]', { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector('#serial-terminal .xterm-rows')?.textContent?.includes('tls-42'),
      undefined, { timeout: 20_000 });
  });

  test('oriel console screenshot over wss with a pinned fingerprint; a wrong pin is refused', async () => {
    const env = { XDG_CONFIG_HOME: join(scratch, 'cfg'), ORIEL_URL: s.url, ORIEL_TOKEN: token };
    const out = join(scratch, 'screen.png');
    const shot = await runCli(['--fingerprint', certs.fingerprint, 'console', 'screenshot', VM, out], env);
    assert.equal(shot.code, 0, shot.stderr);
    const png = PNG.sync.read(readFileSync(out));
    assert.ok(png.width >= 320 && png.height >= 200, `${png.width}x${png.height}`);

    const typed = await runCli(['--ca', certs.caFile, 'console', 'type', VM, 'echo hello', '--enter'], env);
    assert.equal(typed.code, 0, typed.stderr);

    const wrong = certs.fingerprint.replace(/^../, certs.fingerprint.startsWith('AA') ? 'BB' : 'AA');
    const refused = await runCli(['--fingerprint', wrong, 'console', 'screenshot', VM, out], env);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /but the pinned fingerprint is/);
    const untrusted = await runCli(['console', 'screenshot', VM, out], env);
    assert.notEqual(untrusted.code, 0);
    assert.ok(untrusted.stderr.includes(`oriel login --server ${s.url} --fingerprint ${certs.fingerprint}`), untrusted.stderr);
  });
});
