// The web UI's upload form (a file sent in chunks from the browser, with progress) and the create form's install
// media choices: an uploaded ISO with a disk size and a firmware. No guest is started.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../helpers/server.ts';
import { ensureWebBuild, launchChromium, signIn } from './helpers.ts';

describe('web UI: uploads and install media', () => {
  let t: TestServer;
  let browser: Browser;
  let page: Page;
  let scratch: string;

  before(async () => {
    ensureWebBuild();
    scratch = mkdtempSync(join(tmpdir(), 'owu-'));
    t = await startTestServer();
    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
  });
  after(async () => {
    await browser?.close();
    await t?.destroy();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('upload an ISO, then create a UEFI VM that installs from it', async () => {
    // 9 MiB: two chunks. An ISO 9660 signature in sector 16.
    const iso = Buffer.alloc(9 * 2 ** 20 + 4096, 7);
    iso.write('CD001', 16 * 2048 + 1, 'latin1');
    const file = join(scratch, 'My Installer.iso');
    writeFileSync(file, iso);
    await signIn(page, t.url, 'admin', ADMIN_PASSWORD);
    await page.click('#upload-image-button');
    await page.setInputFiles('#upload-file', file);
    assert.equal(await page.inputValue('#upload-name'), 'my-installer', 'the name comes from the file');
    await page.click('#upload-submit');
    await page.waitForSelector('#upload-form', { state: 'detached', timeout: 30_000 });
    const img = (await t.admin.get('/api/images/uploads/my-installer')).body;
    assert.equal(img.state, 'ready');
    assert.equal(img.kind, 'iso');
    const stored = join(t.server.ctx.vms.images.dir(t.server.ctx.vms.images.byName('my-installer')!), 'data');
    assert.ok(readFileSync(stored).equals(iso), 'the bytes arrived as sent');

    await page.click('#create-vm-button');
    await page.fill('#create-name', 'installed');
    await page.selectOption('#create-image', 'iso:my-installer');
    await page.fill('#create-disk', '2');
    await page.selectOption('#create-firmware', 'uefi');
    await page.uncheck('#create-start');
    await page.click('#create-submit');
    await page.waitForSelector('#vm-installed-state[data-state=stopped]');
    const vm = (await t.admin.get('/api/vms/installed')).body;
    assert.equal(vm.cdrom, 'my-installer');
    assert.equal(vm.firmware, 'uefi');
    assert.equal(vm.diskBytes, 2 * 2 ** 30);
  });
});
