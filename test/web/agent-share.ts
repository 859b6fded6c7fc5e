// "Share a folder…" in the web console, driven in Chromium against the desktop guest (called from agent.test.ts,
// which has the guest booted and the console open):
// - Read-only, from the <input type=file webkitdirectory> fallback (a browser without showDirectoryPicker): the
//   button opens the browser's folder chooser, playwright picks a folder of this machine, the guest sees its files
//   at ~/Shared with the same sha256, and a write is refused (HTTP 403 from the share, mkdir fails on the mount).
// - Read-write, through showDirectoryPicker: headless Chromium cannot answer the picker's dialog (playwright
//   intercepts it and Chromium aborts it), so the picker returns the page's origin-private folder — a real
//   FileSystemDirectoryHandle with read-write granted; the guest reads a file the page put there, and a file the
//   guest writes lands in it with the same sha256.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Page } from 'playwright-core';
import { until } from './helpers.ts';

declare const window: any;
declare const navigator: any;
declare const crypto: any;

type Gx = (script: string, timeoutSec?: number) => Promise<{ stdout: string; stderr: string; exitCode: number }>;

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const mounted = async (gx: Gx) => (await gx('mountpoint -q ~/Shared && echo yes')).stdout.trim() === 'yes';

export async function shareFolderChecks(page: Page, gx: Gx, parent: string): Promise<void> {
  const dir = join(parent, 'Shared from the browser');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  const files: Record<string, Buffer> = {
    'hello.txt': Buffer.from('Hallo aus dem Browser ✓\n'),
    'my notes.md': Buffer.from('# notes\n'),
    'sub/data.bin': randomBytes(6 * 1024 * 1024 + 123),
  };
  for (const [n, b] of Object.entries(files)) writeFileSync(join(dir, n), b);

  // Read-only: the fallback, as in a browser without showDirectoryPicker.
  await page.evaluate(() => (window.showDirectoryPicker = undefined));
  const chooser = page.waitForEvent('filechooser');
  await page.click('#console-share-folder');
  await (await chooser).setFiles(dir);
  await page.waitForSelector('#console-share-folder[data-shared=read-only]');
  assert.match(await page.textContent('#console-share-folder') ?? '', new RegExp(`Sharing ${basename(dir)} \\(read-only\\)`));
  await until('~/Shared mounted', async () => (await mounted(gx)) || undefined, 60_000, 500);
  const names = Object.keys(files);
  const sums = await gx(`cd ~/Shared && sha256sum ${names.map((n) => `'${n}'`).join(' ')}`, 120);
  assert.equal(sums.exitCode, 0, sums.stderr);
  assert.deepEqual(sums.stdout.trim().split('\n').map((l) => l.slice(0, 64)), names.map((n) => sha(files[n]!)));
  const put = await gx("curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary x http://127.0.0.1:9843/new.txt");
  assert.equal(put.stdout, '403', 'the read-only share refuses a write with 403 Forbidden');
  assert.notEqual((await gx('mkdir ~/Shared/new-folder')).exitCode, 0, 'mkdir on the read-only mount fails');

  // Stop: the guest unmounts.
  await page.click('#console-share-folder');
  await page.waitForSelector('#console-share-folder[data-shared=none]');
  await until('~/Shared unmounted', async () => !(await mounted(gx)) || undefined, 30_000, 500);

  // Read-write: showDirectoryPicker with the origin-private folder standing in for the dialog's choice.
  const fromPage = `written by the page ${randomBytes(4).toString('hex')}\n`;
  await page.evaluate(async (text) => {
    const root = await navigator.storage.getDirectory();
    const d = await root.getDirectoryHandle('rw-share', { create: true });
    const w = await (await d.getFileHandle('from-browser.txt', { create: true })).createWritable();
    await w.write(text);
    await w.close();
    window.showDirectoryPicker = async () => d;
  }, fromPage);
  await page.click('#console-share-folder');
  await page.waitForSelector('#console-share-folder[data-shared=read-write]');
  await until('~/Shared mounted again', async () => (await mounted(gx)) || undefined, 60_000, 500);
  assert.equal((await gx('cat ~/Shared/from-browser.txt')).stdout, fromPage);
  const w = await gx('head -c 2000000 /dev/urandom > /tmp/w.bin && cp /tmp/w.bin ~/Shared/from-guest.bin && ' +
    'sync ~/Shared/from-guest.bin; sha256sum /tmp/w.bin', 120);
  assert.equal(w.exitCode, 0, w.stderr);
  const inPage = await until('the guest file in the browser folder', () => page.evaluate(async () => {
    const d = await (await navigator.storage.getDirectory()).getDirectoryHandle('rw-share');
    const f = await (await d.getFileHandle('from-guest.bin').catch(() => undefined))?.getFile();
    if (f?.size !== 2_000_000) return undefined;
    const h = new Uint8Array(await crypto.subtle.digest('SHA-256', await f.arrayBuffer()));
    return [...h].map((x: number) => x.toString(16).padStart(2, '0')).join('');
  }), 60_000, 500);
  assert.equal(inPage, w.stdout.split(' ')[0]);
  await page.click('#console-share-folder');
  await page.waitForSelector('#console-share-folder[data-shared=none]');
}
