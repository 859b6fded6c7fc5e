// Switching quickly between a VM's console page and its page (console tab): each load's session takes the console
// over from the one before (one SPICE client at a time, server/console/takeover.ts) and must end connected with
// the guest's picture, never kicked out by a session of its own page or a late one of the page before.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../helpers/server.ts';
import { ensureTinyImage } from '../helpers/images.ts';
import { ensureWebBuild, launchChromium, signIn, until } from './helpers.ts';

const VM = 'switch1';
const ROUNDS = 6;
declare const window: any;

describe('console page ↔ VM page, quickly', () => {
  let t: TestServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    await ensureTinyImage();
    ensureWebBuild();
    t = await startTestServer();
    assert.equal((await t.admin.post('/api/vms', { name: VM, image: 'tiny', memoryMiB: 160 })).status, 201);
    assert.equal((await t.admin.post(`/api/vms/${VM}/start`)).body.state, 'running');
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1024, height: 768 } })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await signIn(page, t.url, 'admin', ADMIN_PASSWORD);
  });
  after(async () => {
    await browser?.close();
    await t?.destroy();
  });

  test(`${ROUNDS} rounds: each page ends connected, with the picture, and stays connected`, async () => {
    const r = await t.admin.post(`/api/vms/${VM}/exec`, { argv: ['true'], timeoutSec: 60 });
    assert.equal(r.status, 200, 'the guest booted');
    const paths = [`/vms/${VM}/console`, `/vms/${VM}`];
    for (let i = 0; i < ROUNDS; i++) {
      const p = paths[i % 2]!;
      // The first rounds leave as soon as the page is connected (the previous page's session is young); the
      // later ones as soon as the page has loaded (still linking).
      await page.goto(t.url + p);
      if (i >= 2 && i < ROUNDS - 2) continue;
      await page.waitForSelector('#console-status[data-status=connected]', { timeout: 15_000 });
      await until(`round ${i} (${p}): a picture`, () => page.evaluate(() => window.orielConsole?.stats.frames > 0), 10_000);
    }
    // The last page keeps its console: nothing of the earlier pages takes it away.
    await page.waitForTimeout(1500);
    assert.equal(await page.getAttribute('#console-status', 'data-status'), 'connected');
    const reconnects = await page.evaluate(() => window.orielConsole.stats.reconnects);
    assert.equal(reconnects, 0, 'the last page never had to reconnect');
    assert.deepEqual(pageErrors, []);
  });
});
