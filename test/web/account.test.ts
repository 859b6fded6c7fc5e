// The account page in a real browser: changing one's password there keeps this browser signed in and ends the
// account's other sessions; a session ended elsewhere (an admin's reset) sends the open page to sign-in at once,
// through its event stream. No guest is needed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { addUser, startTestServer, type TestServer } from '../helpers/server.ts';
import { ensureWebBuild, launchChromium, signIn } from './helpers.ts';

describe('web UI: account', () => {
  let t: TestServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    ensureWebBuild();
    t = await startTestServer();
    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });
  after(async () => {
    await browser?.close();
    await t?.destroy();
  });

  test('change password from the account page: wrong current refused, then changed; other credentials end', async () => {
    const token = await addUser(t, 'frank'); // password frank-password
    await signIn(page, t.url, 'frank', 'frank-password');
    await page.click('#current-user');
    await page.waitForSelector('#password-form');
    await page.fill('#password-current', 'not-my-password');
    await page.fill('#password-new', 'frank-new-password');
    await page.fill('#password-again', 'frank-new-password');
    await page.click('#password-submit');
    assert.equal(await (await page.waitForSelector('#password-error')).textContent(), 'the current password is wrong');
    await page.fill('#password-current', 'frank-password');
    await page.click('#password-submit');
    await page.waitForSelector('.notice-info >> text=Password changed');
    assert.equal(await page.$('#password-error'), null);
    assert.equal((await token.get('/api/auth/me')).status, 401, 'the API token ended');
    assert.equal(new URL(page.url()).pathname, '/account', 'this browser stays signed in');
    assert.equal(await page.evaluate(() => fetch('/api/auth/me').then((r) => r.status)), 200);
    assert.equal((await t.anon.post('/api/auth/login', { username: 'frank', password: 'frank-new-password' })).status, 200);
  });

  test("an admin's reset sends the open page to sign-in at once", async () => {
    await page.goto(t.url + '/');
    await page.waitForSelector('#events-status >> text=live');
    assert.equal((await t.admin.req('PUT', '/api/users/frank/password', { password: 'frank-3rd-password' })).status, 204);
    await page.waitForURL(/\/login/, { timeout: 5000 });
    assert.deepEqual(pageErrors, []);
  });
});
