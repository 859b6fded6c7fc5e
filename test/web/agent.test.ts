// The browser console with the SPICE agent, end to end: Debian's chromium (playwright-core) against a real server
// running the desktop guest (Xorg on QXL, openbox, spice-vdagent, qemu-guest-agent) under TCG. One VM for the whole
// file (it boots in about a minute and takes most of both cores).
// - Clipboard: text copied in the guest (xclip) arrives in the browser's clipboard; text and pictures copied in the
//   browser reach the guest (xclip -o) on Ctrl+V, and on focus only once automatic sharing is on; a picture
//   round-trips with the same pixels both ways; without a usable Clipboard API (an http page on a non-localhost
//   name) the panel carries both ways.
// - Files: three files (one of 200 MiB, streamed from disk) dropped on the console arrive in ~/Downloads with the
//   same sha256, one after another, with progress, through the shared-folder channel (the fast path of a guest with
//   oriel-webdavd; the agent's file transfer, the other path, has its 200 MiB test in spice/vdagent/guest.test.ts);
//   cancel stops a transfer and the guest removes the partial file; the guest's own refusal (not enough space) is
//   shown.
// - Shared folder: "Share a folder…" read-only from the folder chooser and read-write through showDirectoryPicker,
//   seen by the guest at ~/Shared (agent-share.ts).
// - USB: "USB device…" is there with WebUSB (not on an insecure page); a WebUSB device redirected by the console is
//   a USB disk in the guest until unplugged (agent-usb.ts).
// - Resize to window: changing the window's size changes the guest's resolution (xrandr), shown 1:1; the choice
//   is remembered.
// - Monitors: choosing two gives the guest a second output (xrandr), side by side on the canvas, each head's region
//   exactly its region of QMP's screendump.
// Saves docs/console-desktop.png.
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync, ftruncateSync, linkSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { startTestServer, ADMIN_PASSWORD, type TestServer } from '../helpers/server.ts';
import { ensureDesktopImage } from '../helpers/images.ts';
import { startDesktopVm } from '../helpers/desktop.ts';
import { canvasPixels, DOCS, ensureWebBuild, signIn, until } from './helpers.ts';
import { parsePpm } from '../spice/helpers/qemu.ts';
import { shareFolderChecks } from './agent-share.ts';
import { webUsbChecks } from './agent-usb.ts';

// page.evaluate callbacks run in the browser; the Node tsconfig (tsconfig.node.json) has no DOM lib.
declare const document: any;
declare const window: any;
declare const navigator: any;
declare const DataTransfer: any;
declare const DragEvent: any;
declare const ClipboardItem: any;
declare const Blob: any;
declare const createImageBitmap: any;
declare const OffscreenCanvas: any;
declare const MutationObserver: any;

const VM = 'desk';
const MiB = 1024 * 1024;
/** A name that resolves to 127.0.0.1 only inside this browser: an http page there is not a secure context. */
const INSECURE_HOST = 'oriel-insecure.test';

describe('web console with the SPICE agent (desktop guest)', () => {
  let t: TestServer;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  let files: string;
  const pageErrors: string[] = [];

  /** Runs a shell command in the guest as the desktop's user, with its display. */
  const gx = async (script: string, timeoutSec = 60) => {
    const r = await t.admin.post(`/api/vms/${VM}/exec`, {
      argv: [
        'runuser',
        '-u',
        'user',
        '--',
        'env',
        'DISPLAY=:0',
        'XAUTHORITY=/home/user/.Xauthority',
        'HOME=/home/user',
        'sh',
        '-c',
        script,
      ],
      timeoutSec,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { stdout: string; stderr: string; exitCode: number };
  };
  /** The guest's CLIPBOARD selection as text (xclip forks to serve a selection: its output goes to /dev/null). */
  const guestClipboard = async () => {
    const r = await gx('xclip -selection clipboard -o 2>/dev/null | base64 -w0');
    return Buffer.from(r.stdout.trim(), 'base64').toString('utf8');
  };
  const setGuestClipboard = (text: string) =>
    gx(`echo ${Buffer.from(text).toString('base64')} | base64 -d | xclip -selection clipboard -i >/dev/null 2>&1`);
  const browserClipboardText = (p: Page) => p.evaluate(() => navigator.clipboard.readText() as Promise<string>);

  async function openConsole(p: Page, base = t.url): Promise<void> {
    await p.goto(`${base}/vms/${VM}/console`);
    await p.waitForSelector('#console-status[data-status=connected]', { timeout: 60_000 }).catch(async (e: Error) => {
      const status = await p
        .$eval('#console-status', (el) => `${el.getAttribute('data-status')}: ${el.textContent}`)
        .catch(() => 'no status element');
      throw new Error(
        `the console at ${base} did not connect (${status}; page errors: ${pageErrors.join(' | ') || 'none'}): ${e.message}`,
      );
    });
    await p.waitForSelector('#console-agent[data-state=ready]', { timeout: 120_000 });
  }
  /** Gives the console focus as a person does coming back to it (its focus event reads the local clipboard). */
  async function refocusConsole(p: Page): Promise<void> {
    await p.focus('#console-scale');
    await p.focus('.spice-console');
  }

  before(async () => {
    const image = ensureDesktopImage();
    ensureWebBuild();
    files = mkdtempSync(join(tmpdir(), 'oriel-agent-files-'));
    t = await startTestServer();
    await image;
    await startDesktopVm(t, VM);
    // The desktop is up when its xterm is mapped (not merely started: openbox may still be starting).
    await until('the desktop session', async () => {
      const r = await t.admin.post(`/api/vms/${VM}/exec`, {
        argv: [
          'sh',
          '-c',
          'xwininfo -root -tree | grep -q "\\"xterm\\"" && pgrep -x spice-vdagent >/dev/null && echo up',
        ],
        timeoutSec: 20,
      });
      return r.status === 200 && r.body.stdout.trim() === 'up';
    }, 240_000, 2000);
    // Debian's chromium, never a downloaded one; INSECURE_HOST maps to the test server for the fallback test.
    browser = await chromium.launch({
      executablePath: process.env.ORIEL_CHROMIUM ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', `--host-resolver-rules=MAP ${INSECURE_HOST} 127.0.0.1`],
    });
    ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: t.url });
    page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await signIn(page, t.url, 'admin', ADMIN_PASSWORD);
    await openConsole(page);
    mkdirSync(DOCS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await t?.destroy();
    if (files) rmSync(files, { recursive: true, force: true });
  });

  test('text copied in the guest arrives in the browser\'s clipboard', async () => {
    assert.equal(await page.getAttribute('#console-clipboard-toggle', 'data-mode'), 'shared');
    await page.focus('.spice-console');
    const text = `Grüße aus dem Gast ✓ ${randomBytes(4).toString('hex')}\nsecond line`;
    await setGuestClipboard(text);
    assert.equal(await until('the guest\'s text in the browser clipboard', async () => {
      const got = await browserClipboardText(page);
      return got === text ? got : undefined;
    }), text);
  });

  test('text copied in the browser reaches the guest: on Ctrl+V, and on focus once automatic sharing is on', async () => {
    // Off by default: coming back to the console does not hand the guest what was copied elsewhere.
    const secret = `copied in another tab ${randomBytes(4).toString('hex')}`;
    const guestBefore = await guestClipboard();
    const sentBefore = await page.evaluate(() => window.orielConsole.clipboard.stats.toGuest as number);
    await page.evaluate((s) => navigator.clipboard.writeText(s), secret);
    await refocusConsole(page);
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(await page.evaluate(() => window.orielConsole.clipboard.stats.toGuest as number), sentBefore);
    assert.equal(await guestClipboard(), guestBefore, 'the guest did not get the clipboard without a paste');

    // The person turns automatic sharing on (the clipboard panel's checkbox): shared at once, then on every focus.
    await page.click('#console-clipboard-toggle');
    await page.check('#console-clip-auto');
    assert.equal(
      await until('the text in the guest', async () => ((await guestClipboard()) === secret ? secret : undefined)),
      secret,
    );
    await page.click('#console-clip-close');
    const first = `from the browser ${randomBytes(4).toString('hex')} — ünïcode`;
    await page.evaluate((s) => navigator.clipboard.writeText(s), first);
    await refocusConsole(page);
    assert.equal(
      await until('the text in the guest', async () => ((await guestClipboard()) === first ? first : undefined)),
      first,
    );

    // The console keeps focus; the paste shortcut gives the guest what is on the clipboard now, before the keys go.
    const second = `pasted ${randomBytes(4).toString('hex')}`;
    await page.evaluate((s) => {
      document
        .querySelector('.spice-console')
        .addEventListener('paste', (e: any) => (window.__pasted = e.clipboardData.getData('text/plain')), {
          once: true,
        });
      return navigator.clipboard.writeText(s);
    }, second);
    await page.keyboard.press('Control+KeyV');
    assert.equal(
      await until('the pasted text in the guest', async () =>
        (await guestClipboard()) === second ? second : undefined,
      ),
      second,
    );
    // The browser did fire its paste event on the console (the shortcut was not swallowed).
    assert.equal(await page.evaluate(() => window.__pasted), second);

    // Over the size limit (32 MiB): not sent, and the person is told why.
    await page.evaluate(() => navigator.clipboard.writeText('a'.repeat(33 * 1024 * 1024)));
    await refocusConsole(page);
    await page.waitForSelector('.notice-error:has-text("over the 32.0 MiB limit")', { timeout: 20_000 });
    assert.equal(await guestClipboard(), second);
    await page.evaluate(() => navigator.clipboard.writeText('small again'));
    await page.click('.notice-error button');
  });

  test('a picture round-trips with the same pixels: guest → browser → guest', async () => {
    // An opaque picture with every channel varying (no alpha: browsers premultiply it).
    const png = new PNG({ width: 67, height: 41 });
    for (let y = 0; y < png.height; y++) {
      for (let x = 0; x < png.width; x++) {
        const i = (y * png.width + x) * 4;
        png.data[i] = (x * 37 + y * 11) & 255;
        png.data[i + 1] = (x * 5 + y * 29) & 255;
        png.data[i + 2] = (x * y * 3 + 17) & 255;
        png.data[i + 3] = 255;
      }
    }
    const original = Buffer.from(png.data);
    const bytes = PNG.sync.write(png);
    await page.focus('.spice-console');
    await gx(
      `echo ${bytes.toString('base64')} | base64 -d > /tmp/in.png && xclip -selection clipboard -t image/png -i /tmp/in.png >/dev/null 2>&1`,
    );

    // In the browser's clipboard, decoded by the browser.
    const seen = await until('the guest\'s picture in the browser clipboard', () => page.evaluate(async () => {
      const items = await navigator.clipboard.read();
      const it = items.find((i: any) => i.types.includes('image/png'));
      if (!it) return undefined;
      const bmp = await createImageBitmap(await it.getType('image/png'), {
        colorSpaceConversion: 'none',
        premultiplyAlpha: 'none',
      });
      const c = new OffscreenCanvas(bmp.width, bmp.height);
      const g = c.getContext('2d');
      g.drawImage(bmp, 0, 0);
      const d: Uint8ClampedArray = g.getImageData(0, 0, bmp.width, bmp.height).data;
      let s = '';
      for (let i = 0; i < d.length; i++) s += String.fromCharCode(d[i]!);
      return { width: bmp.width, height: bmp.height, rgba: btoa(s) };
    }), 30_000, 500);
    assert.deepEqual([seen.width, seen.height], [png.width, png.height]);
    assert.ok(
      Buffer.from(seen.rgba, 'base64').equals(original),
      'the browser decodes the same pixels the guest copied',
    );

    // Back: the browser's clipboard (the browser's own PNG encoding now) → the guest, decoded there by pngjs here.
    // First the guest copies something else (so only a working browser → guest path can give it the picture back),
    // and that reaches the browser before the browser copies the picture.
    await setGuestClipboard('x');
    await until(
      'the guest\'s "x" in the browser clipboard',
      async () => (await browserClipboardText(page)) === 'x' || undefined,
    );
    await page.evaluate(async (b64) => {
      const bin = atob(b64);
      const u8 = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
      await navigator.clipboard.write([new ClipboardItem({ 'image/png': new Blob([u8], { type: 'image/png' }) })]);
    }, bytes.toString('base64'));
    await refocusConsole(page);
    const back = await until('the picture in the guest', async () => {
      const r = await gx(
        'xclip -selection clipboard -t TARGETS -o 2>/dev/null | grep -qx image/png && xclip -selection clipboard -t image/png -o 2>/dev/null | base64 -w0',
      );
      const b = Buffer.from(r.stdout.trim(), 'base64');
      return b.length > 8 && b.subarray(1, 4).toString() === 'PNG' ? b : undefined;
    }, 30_000, 500);
    const decoded = PNG.sync.read(back);
    assert.deepEqual([decoded.width, decoded.height], [png.width, png.height]);
    assert.ok(Buffer.from(decoded.data).equals(original), 'the guest gets the same pixels the browser copied');
  });

  test('three dropped files (one of 200 MiB, streamed from disk) arrive in ~/Downloads intact, one after another, through the shared-folder channel', async () => {
    const specs: [string, number][] = [['notes.txt', 0], ['photo.bin', 3 * MiB + 12345], ['big.bin', 200 * MiB]];
    const sums = new Map<string, string>();
    for (const [name, size] of specs) {
      const path = join(files, name);
      const h = createHash('sha256');
      const fd = openSync(path, 'w');
      if (name === 'notes.txt') {
        const b = Buffer.from('Notes dropped on the console.\nÜmlauts too.\n');
        writeSync(fd, b);
        h.update(b);
      } else {
        for (let at = 0; at < size; at += 4 * MiB) {
          const b = randomBytes(Math.min(4 * MiB, size - at));
          writeSync(fd, b);
          h.update(b);
        }
      }
      closeSync(fd);
      sums.set(name, h.digest('hex'));
    }

    // The guest's WebDAV daemon (oriel-webdavd) polls the console's drop box (its status file says so): then drops
    // take that channel (#12's fast path) rather than the agent's file transfer.
    await until('the guest fetching drops', async () =>
      (await gx('cat /run/oriel-webdavd.status')).stdout.trim() === 'polling' || undefined,
    60_000, 500);
    // The drop, as the browser delivers it: a DataTransfer holding disk-backed Files (from a file input, so nothing
    // is read into the page), dispatched as dragenter/dragover/drop on the console.
    await page.evaluate(() => {
      const input = document.createElement('input');
      input.type = 'file';
      input.multiple = true;
      input.id = 'test-drop-source';
      input.hidden = true;
      document.body.append(input);
      // Every change of a transfer row: state and bytes sent (progress, and "one at a time").
      window.__xferLog = [];
      window.__xferObserver = new MutationObserver(() => {
        const rows = [...document.querySelectorAll('.xfer')];
        window.__xferLog.push(
          rows.map((r: any) => ({
            name: r.querySelector('.xfer-name').textContent,
            state: r.dataset.state,
            sent: Number(r.dataset.sent),
          })),
        );
      });
      window.__xferObserver.observe(document.body, {
        subtree: true,
        childList: true,
        attributes: true,
        attributeFilter: ['data-sent', 'data-state'],
      });
    });
    await page.setInputFiles('#test-drop-source', specs.map(([n]) => join(files, n)));
    const dispatch = (type: string) => page.evaluate((type) => {
      const dt = new DataTransfer();
      for (const f of document.getElementById('test-drop-source').files) dt.items.add(f);
      document
        .querySelector('.console-host')
        .dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, type);
    await dispatch('dragenter');
    await dispatch('dragover');
    assert.equal(await page.isVisible('#console-drop-overlay'), true);
    assert.match(await page.textContent('#console-drop-overlay') ?? '', /Downloads/);
    await dispatch('drop');
    assert.equal(await page.isVisible('#console-drop-overlay'), false);

    await page.waitForSelector('#console-transfers .xfer');
    const rows = await page.$$eval('.xfer', (els: any[]) => els.map((e) => e.querySelector('.xfer-name').textContent));
    assert.deepEqual(rows, specs.map(([n]) => n));
    // The picture for the README: transfers under way, the clipboard panel showing what the guest copied.
    await gx('uname -srm | xclip -selection clipboard -i >/dev/null 2>&1');
    await page.click('#console-clipboard-toggle');
    await page.waitForSelector('#console-clip-guest');
    await until('big.bin a third through', async () => {
      const sent = Number(await page.getAttribute('.xfer:nth-child(3)', 'data-sent'));
      return sent > 60 * MiB || undefined;
    }, 600_000, 250);
    await page.screenshot({ path: join(DOCS, 'console-desktop.png') });
    await page.click('#console-clip-close');
    // 200 MiB at 10-20 MiB/s into a TCG guest: 10-20 s; allow for a busy machine.
    await until('all three transfers done', async () => {
      const states = await page.$$eval('.xfer', (els: any[]) => els.map((e) => e.dataset.state));
      if (states.some((s: string) => s === 'failed' || s === 'cancelled')) {
        throw new Error(`a transfer ended badly: ${await page.textContent('#console-transfers')}`);
      }
      return states.every((s: string) => s === 'done') || undefined;
    }, 600_000, 500);

    const log: { name: string; state: string; sent: number }[][] = await page.evaluate(() => {
      window.__xferObserver.disconnect();
      return window.__xferLog;
    });
    assert.ok(log.every((snap) => snap.filter((r) => r.state === 'sending').length <= 1), 'one transfer at a time');
    const bigSent = [
      ...new Set(
        log
          .map((snap) => snap.find((r) => r.name === 'big.bin'))
          .filter((r) => r?.state === 'sending')
          .map((r) => r!.sent),
      ),
    ];
    assert.ok(bigSent.length >= 10, `progress reported while sending (${bigSent.length} distinct values)`);
    assert.deepEqual(bigSent, [...bigSent].sort((a, b) => a - b), 'progress only grows');
    assert.ok(bigSent.some((s) => s > 0 && s < 200 * MiB), 'progress in between');

    const r = await gx(`cd ~/Downloads && sha256sum ${specs.map(([n]) => n).join(' ')}`, 120);
    const got = new Map(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => {
          const [sum, name] = l.split(/\s+/);
          return [name!, sum!];
        }),
    );
    for (const [name] of specs) assert.equal(got.get(name), sums.get(name), `${name}: same sha256 in the guest`);
    const via = await page.$$eval('.xfer', (els: any[]) => els.map((e) => e.dataset.via));
    assert.deepEqual(via, ['webdav', 'webdav', 'webdav'], 'the drops took the shared-folder channel');
  });

  test('cancel stops a transfer and the guest removes the partial file; the guest\'s refusal is shown', async () => {
    await page.click('#console-xfer-clear');
    // The same 200 MiB under another name (a hard link: no second copy on disk), and a 64 GiB sparse file: more
    // than the guest's disk, which its agent refuses before any byte moves.
    linkSync(join(files, 'big.bin'), join(files, 'cancel-me.bin'));
    const huge = openSync(join(files, 'too-big.iso'), 'w');
    ftruncateSync(huge, 64 * 1024 * MiB);
    closeSync(huge);
    await page.setInputFiles('#console-file-input', [join(files, 'cancel-me.bin'), join(files, 'too-big.iso')]);
    await page.waitForSelector('.xfer[data-state=sending]');
    const id = await page.$eval('.xfer[data-state=sending]', (e: any) => e.id as string);
    await until(
      'some bytes sent',
      async () => Number(await page.getAttribute(`#${id}`, 'data-sent')) > 8 * MiB || undefined,
      120_000,
      250,
    );
    // The guest is writing the file: under its name (agent), or as a hidden .part file (WebDAV drop) ...
    const partial = (await gx('stat -c %s ~/Downloads/cancel-me.bin ~/Downloads/.oriel-drop-*.part 2>/dev/null')).stdout
      .split('\n').reduce((n, l) => n + (Number(l.trim()) || 0), 0);
    assert.ok(partial > 0, `the partial file exists in the guest (${partial} bytes)`);
    await page.click(`#${id}-cancel`);
    await page.waitForSelector(`#${id}[data-state=cancelled]`, { timeout: 15_000 });
    // ... and removes it once told.
    await until(
      'the partial file removed',
      async () => (await gx('ls -A ~/Downloads')).stdout.split('\n')
        .every((n) => n !== 'cancel-me.bin' && !n.startsWith('.oriel-drop-')) || undefined,
      30_000,
      500,
    );

    // The next one starts by itself and the guest refuses it: the reason is shown.
    const refused = await page.waitForSelector('.xfer[data-state=failed]', { timeout: 60_000 });
    assert.match(await refused.textContent() ?? '', /too-big\.iso/);
    assert.equal(await refused.getAttribute('data-code'), 'no-space');
    assert.match(await refused.textContent() ?? '', /not enough space in the guest/);
    assert.doesNotMatch((await gx('ls -A ~/Downloads')).stdout, /too-big/);
  });

  test('"Share a folder…": read-only from the folder chooser, read-write by showDirectoryPicker, at ~/Shared', () =>
    shareFolderChecks(page, gx, files));

  test('WebUSB: the "USB device…" button; a redirected device is a USB disk in the guest until unplugged', () =>
    webUsbChecks(page, async (script, timeoutSec = 60) => {
      const r = await t.admin.post(`/api/vms/${VM}/exec`, { argv: ['sh', '-c', script], timeoutSec });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body as { stdout: string; stderr: string; exitCode: number };
    }));

  test("resize guest to window: the guest takes the console area's size, shown 1:1, and follows the window", async () => {
    await page.selectOption('#console-scale', 'remote');
    const current = async () => {
      const m = /current (\d+) x (\d+)/.exec((await gx('xrandr --current')).stdout);
      return m ? [Number(m[1]), Number(m[2])] : undefined;
    };
    for (const viewport of [{ width: 1100, height: 780 }, { width: 1000, height: 700 }]) {
      await page.setViewportSize(viewport);
      const area: { width: number; height: number } = await until('the area laid out', () =>
        page.evaluate(() => window.orielConsole.areaSize),
      );
      const want = [Math.floor(area.width / 8) * 8, area.height];
      assert.ok(want[0]! < viewport.width && want[1]! < viewport.height);
      await until(`the guest at ${want.join('×')}`, async () => {
        const c = await current();
        return c && c[0] === want[0] && c[1] === want[1] ? c : undefined;
      }, 60_000, 1000);
      // The console shows the guest's new screen at 1:1.
      const shown = await until('the canvas at the new size, 1:1', () => page.evaluate(() => {
        const c = document.getElementById('console-canvas');
        const r = c.getBoundingClientRect();
        return c.width === r.width && c.height === r.height ? [c.width, c.height] : undefined;
      }), 30_000);
      assert.deepEqual(shown, want);
    }
    // Remembered: a reload keeps the choice.
    await page.reload();
    await page.waitForSelector('#console-status[data-status=connected]', { timeout: 60_000 });
    assert.equal(await page.inputValue('#console-scale'), 'remote');
    await page.selectOption('#console-scale', 'fit');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  test('two monitors: the guest gets a second output, side by side on the canvas, each head pixel-exact', async () => {
    const t0 = Date.now();
    // The page may have been reloaded just before: its agent ready and the guest's screen there first.
    await page.waitForSelector('#console-agent[data-state=ready]', { timeout: 60_000 });
    const [w, h] = await until('the guest screen', () => page.evaluate(() => {
      const s = window.orielConsole.screenSize;
      return s && [s.width, s.height];
    }), 30_000) as [number, number];
    await page.selectOption('#console-monitors', '2');
    const want = [[w, h, 0], [w, h, w]];
    const heads = await until('two heads in the console', () => page.evaluate(() =>
      window.orielConsole.monitors.length === 2 ? window.orielConsole.monitors : undefined), 60_000);
    assert.deepEqual(heads.map((m: { width: number; height: number; x: number }) => [m.width, m.height, m.x]), want);
    assert.match(await page.textContent('#console-size') ?? '', /\(2 monitors\)/);
    const xr = (await gx('xrandr --current')).stdout;
    assert.match(xr, new RegExp(`^Virtual-2 connected ${w}x${h}\\+${w}\\+0`, 'm'), xr);
    // The canvas is the guest's one screen: each head's region against the same region of QMP's screendump.
    const dump = join(files, 'heads.ppm');
    let differing = -1;
    for (let i = 0; i < 40 && differing !== 0; i++) {
      await t.server.ctx.vms.qmp(VM).execute('screendump', { filename: dump, format: 'ppm' });
      const ppm = parsePpm(readFileSync(dump));
      const c = await canvasPixels(page);
      if (c.width !== 2 * w || ppm.width !== 2 * w || c.height !== ppm.height) {
        await sleep(250); // the canvas (or the guest) has not taken the new size yet
        continue;
      }
      differing = 0;
      for (const [, hh, x0] of want) {
        for (let y = 0; y < hh!; y++) {
          for (let x = x0!; x < x0! + w; x++) {
            const a = (y * ppm.width + x) * 3;
            const b = (y * c.width + x) * 4;
            if (ppm.rgb[a] !== c.data[b] || ppm.rgb[a + 1] !== c.data[b + 1] || ppm.rgb[a + 2] !== c.data[b + 2])
              differing++;
          }
        }
      }
    }
    assert.equal(differing, 0, 'pixels of the heads differing from the screendump');
    await page.selectOption('#console-monitors', '1');
    await until('one head again', () => page.evaluate(() => window.orielConsole.monitors.length === 1), 60_000);
    console.log(`# two monitors and back in ${Date.now() - t0} ms`);
  });

  test('without the Clipboard API (http on a non-localhost name) the clipboard panel carries both ways', async () => {
    // One SPICE client at a time: leave the console on the secure page first.
    await page.goto(`${t.url}/`);
    const base = t.url.replace('127.0.0.1', INSECURE_HOST);
    const other = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const p = await other.newPage();
      p.on('pageerror', (e) => pageErrors.push(e.message));
      await signIn(p, base, 'admin', ADMIN_PASSWORD);
      assert.equal(await p.evaluate(() => window.isSecureContext), false);
      await openConsole(p, base);
      assert.equal(await p.getAttribute('#console-clipboard-toggle', 'data-mode'), 'panel');
      assert.equal(await p.isVisible('#console-usb'), false, 'no WebUSB on an insecure page: no USB button');
      const text = `for the panel ${randomBytes(4).toString('hex')}`;
      await setGuestClipboard(text);
      // The panel opens by itself with what the guest copied.
      await p.waitForSelector('#console-clip-guest', { timeout: 20_000 });
      assert.equal(
        await until('the guest text in the panel', async () =>
          (await p.inputValue('#console-clip-guest')) === text ? text : undefined,
        ),
        text,
      );
      assert.match(await p.textContent('#console-clip-status') ?? '', /https or on localhost/);
      // Its Copy button still copies (the old execCommand way, from the click): the other page reads it.
      await p.click('#console-clip-copy');
      await p.waitForSelector('#console-clip-message:has-text("Copied")');
      assert.equal(await browserClipboardText(page), text);
      const up = `typed into the panel ${randomBytes(4).toString('hex')}`;
      await p.fill('#console-clip-local', up);
      await p.click('#console-clip-send');
      assert.equal(
        await until('the panel text in the guest', async () => ((await guestClipboard()) === up ? up : undefined)),
        up,
      );
    } finally {
      await other.close();
    }
    assert.deepEqual(pageErrors, []);
  });
});
