// The web UI's networks page (create a network, a server error shown in the form) and the create form's network
// choice: a VM made on the new network shows on the network's row with its lease. No guest is started.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { ensureTinyImage } from '../helpers/images.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../helpers/server.ts';
import { ensureWebBuild, launchChromium, signIn } from './helpers.ts';

describe('web UI: networks', () => {
  let t: TestServer;
  let browser: Browser;
  let page: Page;

  before(async () => {
    ensureWebBuild();
    await ensureTinyImage();
    t = await startTestServer();
    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
  });
  after(async () => {
    await browser?.close();
    await t?.destroy();
  });

  test('create a network in the networks page, then a VM on it in the create form', async () => {
    await signIn(page, t.url, 'admin', ADMIN_PASSWORD);
    await page.click('#nav-networks');
    await page.waitForSelector('#create-network-form');
    // The server's word on a bad subnet shows in the form.
    await page.fill('#network-name', 'office');
    await page.fill('#network-subnet', '10.1.2.3/24');
    await page.click('#network-submit');
    assert.match(await page.textContent('#network-error', { timeout: 10_000 }) ?? '', /10\.1\.2\.3\/24/);
    await page.fill('#network-subnet', '10.77.44.0/24');
    await page.check('#network-nat');
    await page.click('#network-submit');
    const row = await page.waitForSelector('#network-office-row');
    const text = (await row.textContent()) ?? '';
    for (const s of ['office', '10.77.44.0/24', '10.77.44.1', 'NAT', 'admin']) assert.ok(text.includes(s), `${s} in ${text}`);
    const net = (await t.admin.get('/api/networks/office')).body;
    assert.deepEqual([net.subnet, net.nat, net.isolated], ['10.77.44.0/24', true, false]);

    await page.click('a[href="/"]');
    await page.click('#create-vm-button');
    await page.fill('#create-name', 'wired');
    await page.selectOption('#create-image', 'tiny');
    await page.fill('#create-memory', '128');
    await page.check('#create-network-office');
    await page.uncheck('#create-start');
    await page.click('#create-submit');
    await page.waitForSelector('#vm-wired-state[data-state=stopped]');
    const card = (await t.admin.get('/api/vms/wired')).body.networks[0];
    assert.equal(card.network, 'office');
    assert.match(card.ip, /^10\.77\.44\.\d+$/);

    // Back on the networks page, the VM is on the network's row: its lease and MAC.
    await page.click('#nav-networks');
    const again = await page.waitForSelector('#network-office-row a[href="/vms/wired"]');
    const vms = (await again.evaluate((a: { parentElement: { textContent: string } }) => a.parentElement.textContent));
    assert.ok(vms.includes(card.ip) && vms.includes(card.mac), vms);
  });
});
