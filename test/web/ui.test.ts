// The web UI end to end: Debian's chromium (playwright-core) against a real server with a real tiny guest.
// Sign in, create and start a VM, the SPICE console shows exactly what QMP screendump shows, keys typed in the page
// (and through the send-key menu and the type-text box) reach the guest's shell on tty1 by physical position
// (checked under a non-US guest keymap too), mouse clicks reach QEMU, a reload brings the console back, the serial
// console is interactive and shared, and console WebSockets are refused without the right session and origin.
// Saves docs/vm-list.png and docs/console.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { PNG } from 'pngjs';
import WebSocket from 'ws';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../helpers/server.ts';
import { ensureTinyImage } from '../helpers/images.ts';
import { parsePpm } from '../spice/helpers/qemu.ts';
import { canvasPixels, DOCS, ensureWebBuild, launchChromium, signIn, typeKeys, until } from './helpers.ts';

const VM = 'web1';
// page.evaluate callbacks run in the browser; the Node tsconfig (tsconfig.node.json) has no DOM lib.
declare const document: any;
declare const location: any;

describe('web UI', () => {
  let t: TestServer;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  const dump = join(tmpdir(), `oriel-web-${process.pid}.ppm`);
  const pageErrors: string[] = [];

  const exec = async (script: string) => {
    const r = await t.admin.post(`/api/vms/${VM}/exec`, { argv: ['sh', '-c', script], timeoutSec: 30 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { stdout: string; stderr: string; exitCode: number };
  };
  const qemuLog = () => readFileSync(t.server.ctx.vms.paths(t.server.ctx.vms.get(VM)).qemuLog, 'utf8');

  /** Differing pixels between the page's canvas and QMP screendump, polled until they agree (or the last count). */
  async function canvasMatchesScreendump(p: Page): Promise<number> {
    let differing = -1;
    for (let i = 0; i < 40; i++) {
      await t.server.ctx.vms.qmp(VM).execute('screendump', { filename: dump, format: 'ppm' });
      const ppm = parsePpm(readFileSync(dump));
      const c = await canvasPixels(p);
      if (c.width === ppm.width && c.height === ppm.height) {
        differing = 0;
        for (let a = 0, b = 0; a < ppm.rgb.length; a += 3, b += 4) {
          if (ppm.rgb[a] !== c.data[b] || ppm.rgb[a + 1] !== c.data[b + 1] || ppm.rgb[a + 2] !== c.data[b + 2])
            differing++;
        }
        if (differing === 0) return 0;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    return differing;
  }

  async function openConsole(p: Page): Promise<void> {
    await p.goto(`${t.url}/vms/${VM}/console`);
    await p.waitForSelector('#console-status[data-status=connected]', { timeout: 30_000 });
  }

  /** Focuses the console (a click: it also asks for pointer lock in server mouse mode). */
  async function focusConsole(p: Page): Promise<void> {
    await p.click('#console-canvas');
    await until(
      'console focus',
      () => p.evaluate(() => document.activeElement?.classList.contains('spice-console') ?? false),
      5000,
      50,
    );
  }

  /** Leaves pointer lock (a person presses Esc; a synthetic Esc does not reach the browser's own handling). */
  const unlockPointer = (p: Page) => p.evaluate(() => document.exitPointerLock());

  before(async () => {
    await ensureTinyImage();
    ensureWebBuild();
    t = await startTestServer();
    browser = await launchChromium();
    ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await ctx.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    mkdirSync(DOCS, { recursive: true });
  });
  after(async () => {
    rmSync(dump, { force: true });
    await browser?.close();
    await t?.destroy();
  });

  test('sign in, create a VM from the tiny image and start it; its state arrives live', async () => {
    await page.goto(t.url + `/vms/${VM}/console`);
    await page.waitForURL(/\/login\?next=/);
    await page.fill('#login-username', 'admin');
    await page.fill('#login-password', 'wrong');
    await page.click('#login-submit');
    await page.waitForSelector('#login-error');
    await page.fill('#login-password', ADMIN_PASSWORD);
    await page.click('#login-submit');
    await page.waitForSelector('#vm-missing'); // back where we were going: a VM that does not exist yet
    await page.goto(t.url + '/');
    await page.click('#create-vm-button');
    await page.fill('#create-name', VM);
    await page.selectOption('#create-image', 'tiny');
    await page.fill('#create-memory', '160');
    await page.fill('#create-cpus', '1');
    await page.click('#create-submit');
    await page.waitForSelector(`#vm-${VM}-state[data-state=running]`, { timeout: 60_000 });
    await exec('true'); // booted to its shells
    const made = (await t.admin.get(`/api/vms/${VM}`)).body;
    assert.deepEqual([made.hugepages, made.hugepagesNow, made.hugepagesWhy], [null, true, null],
      'no choice: huge pages, which a root server reserves');
    // A huge-page VM with OpenCL remoting and a 64 MiB zero-copy window, created without starting it (this host may
    // have no huge pages reserved).
    await page.click('#create-vm-button');
    await page.fill('#create-name', 'huge');
    await page.selectOption('#create-image', 'tiny');
    await page.selectOption('#create-hugepages', 'always');
    assert.equal(await page.isVisible('#create-opencl-window'), false, 'the window size only with OpenCL');
    await page.check('#create-opencl');
    await page.selectOption('#create-opencl-window', '64');
    await page.uncheck('#create-start');
    await page.click('#create-submit');
    await page.waitForSelector('#vm-huge-state[data-state=stopped]');
    const huge = (await t.admin.get('/api/vms/huge')).body;
    assert.deepEqual([huge.hugepages, huge.opencl, huge.openclWindowMiB], [true, true, 64]);
    assert.equal((await t.admin.delete('/api/vms/huge')).status, 204);
    await page.waitForSelector('#vm-huge-state', { state: 'detached' });
    // A change made elsewhere (the API) shows up without a reload: the event stream.
    assert.equal((await t.admin.post(`/api/vms/${VM}/pause`)).status, 200);
    await page.waitForSelector(`#vm-${VM}-state[data-state=paused]`);
    await page.click(`#vm-${VM}-resume`);
    await page.waitForSelector(`#vm-${VM}-state[data-state=running]`);
    // Another VM and an operation (the image build is instant when cached) appear live as well.
    assert.equal((await t.admin.post('/api/vms', { name: 'spare', image: 'tiny', memoryMiB: 128 })).status, 201);
    await page.waitForSelector('#vm-spare-state[data-state=stopped]');
    const op = await t.admin.post('/api/images/tiny/build');
    await page.waitForSelector(`#op-${op.body.id}[data-status=succeeded]`);
    await page.screenshot({ path: join(DOCS, 'vm-list.png') });
  });

  test('the console canvas shows exactly what QMP screendump shows, and follows changes', async () => {
    await openConsole(page);
    assert.equal(await canvasMatchesScreendump(page), 0);
    await exec('head -c 300000 /dev/urandom > /dev/fb0');
    assert.equal(await canvasMatchesScreendump(page), 0);
    await exec('printf "\\033[2J\\033[H" > /dev/tty1'); // clear the noise
  });

  test("before SPICE draws, the console shows the server's picture of the screen, pixel-exact", async () => {
    const p = await ctx.newPage();
    // The console's WebSockets go through Playwright here, QEMU's side held back until released: SPICE cannot draw.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    await p.routeWebSocket(/\/api\/vms\/[^/]+\/spice/, (ws) => {
      const server = ws.connectToServer();
      server.onMessage((m) => void released.then(() => ws.send(m)));
    });
    const marks = () => p.evaluate(() => ['picture', 'first-draw'].map(
      (m) => (globalThis as any).performance.getEntriesByName(`oriel:${m}`).length as number));
    try {
      // The screen at rest first (the test before cleared it): the picture is of one moment, SPICE's comes later.
      let last = '';
      await until('a still screen', async () => {
        await t.server.ctx.vms.qmp(VM).execute('screendump', { filename: dump, format: 'ppm' });
        const now = readFileSync(dump).toString('base64');
        const still = now === last;
        last = now;
        return still;
      }, 15_000, 300);
      // The picture the page itself was served, kept as it passes (the guest's screen may change once a new client
      // connects, and the server serves a picture again for only a second: neither a screendump nor a fetch made now
      // would do).
      let served: Buffer | undefined;
      await p.route(`**/api/vms/${VM}/console/screen`, async (route) => {
        const r = await route.fetch();
        served = await r.body();
        await route.fulfill({ response: r, body: served });
      });
      await p.goto(`${t.url}/vms/${VM}/console`);
      await until('the server picture is drawn', async () => (await marks())[0] === 1, 15_000, 50);
      // The canvas holds the server's picture pixel for pixel.
      assert.ok(served?.length, 'the page was served a picture');
      const png = PNG.sync.read(served!);
      const c = await canvasPixels(p);
      assert.deepEqual([c.width, c.height], [png.width, png.height]);
      let differing = 0;
      for (let i = 0; i < png.data.length; i += 4) {
        if (png.data[i] !== c.data[i] || png.data[i + 1] !== c.data[i + 1] || png.data[i + 2] !== c.data[i + 2])
          differing++;
      }
      assert.equal(differing, 0, 'the canvas is the picture, pixel for pixel');
      assert.deepEqual(await marks(), [1, 0], 'SPICE has drawn nothing yet: the canvas holds the picture');
      release();
      await p.waitForSelector('#console-status[data-status=connected]', { timeout: 30_000 });
      await until('SPICE draws', async () => (await marks())[1] === 1, 15_000, 50);
      await exec('head -c 300000 /dev/urandom > /dev/fb0');
      assert.equal(await canvasMatchesScreendump(p), 0, 'and SPICE draws over it');
      await exec('printf "\\033[2J\\033[H" > /dev/tty1');
    } finally {
      release();
      await p.close();
    }
    // One SPICE client at a time: this page took over from the shared page's console, which comes back now.
    await openConsole(page);
  });

  test("the console page loads only the console's code: no xterm.js, uPlot or checkpoint views", async () => {
    const p = await ctx.newPage();
    // What the page asked for; the bodies are read here (a cached file answers the page with a bodiless 304).
    const urls: string[] = [];
    p.on('request', (r) => { if (r.resourceType() === 'script') urls.push(r.url()); });
    const read = () =>
      Promise.all(urls.map(async (u) => ({ path: new URL(u).pathname, text: await (await fetch(u)).text() })));
    try {
      await openConsole(p);
      assert.equal(await canvasMatchesScreendump(p), 0);
      let scripts = await read();
      const names = scripts.map((s) => s.path);
      // The entry, the app's shared plumbing (vite.config.ts) and the SPICE core (early-link.js is inline): no more.
      assert.ok(names.length > 0 && names.length <= 4, `scripts: ${names.join(' ')}`);
      assert.ok(!names.some((n) => /serial-terminal|checkpoints|uplot|vm-list/i.test(n)), names.join(' '));
      // Nor is their code inside what was loaded (the single bundle of before carried all of it).
      for (const marker of ['xterm-helper-textarea', 'u-legend', 'checkpoint-take']) {
        assert.ok(!scripts.some((s) => s.text.includes(marker)), `the console page loaded code with '${marker}'`);
      }
      const bytes = scripts.reduce((n, s) => n + Buffer.byteLength(s.text), 0);
      assert.ok(bytes < 300_000, `the console page loaded ${bytes} bytes of script`);
      // The other views still come, on use: the serial tab brings xterm.js.
      await p.goto(`${t.url}/vms/${VM}?tab=serial`);
      await p.waitForSelector('.xterm');
      scripts = await read();
      assert.ok(scripts.some((s) => /serial-terminal/.test(s.path)), 'the serial terminal chunk was loaded');
    } finally {
      await p.close();
    }
    // One SPICE client at a time: this page's console took over from the shared page's, which comes back now.
    await openConsole(page);
  });

  test('keys typed in the page reach the shell on tty1; Shift by position; key combos switch VTs', async () => {
    // QEMU traces every key it gets (SPICE scancodes become QEMU key codes: qcode names) into qemu.log.
    await t.server.ctx.vms.qmp(VM).execute('trace-event-set-state', { name: 'input_event_key_qcode', enable: true });
    await focusConsole(page);
    await typeKeys(page, 'echo typed-ok > /tmp/t\n');
    assert.equal(
      await until('typed file', async () => (await exec('cat /tmp/t 2>/dev/null')).stdout.trim() || undefined),
      'typed-ok',
    );
    // '>' was Shift + the Period key: set-1 2A then 34, which QEMU names shift and dot.
    assert.match(qemuLog(), /qcode shift, down 1\s*\n.*qcode dot, down 1/);

    // A combination typed in the page: Ctrl+Alt+F2 switches the guest to its second virtual terminal (which must
    // exist: the kernel ignores a switch to a VT nobody opened) ...
    await exec(': > /dev/tty2');
    await page.keyboard.press('Control+Alt+F2');
    assert.equal(
      await until(
        'tty2',
        async () => (await exec('cat /sys/class/tty/tty0/active')).stdout.trim() === 'tty2' || undefined,
      ),
      true,
    );
    // ... and the send-key menu brings it back.
    await unlockPointer(page);
    await page.selectOption('#console-sendkey', 'Ctrl+Alt+F1');
    await page.click('#console-sendkey-button');
    assert.equal(
      await until(
        'tty1',
        async () => (await exec('cat /sys/class/tty/tty0/active')).stdout.trim() === 'tty1' || undefined,
      ),
      true,
    );
  });

  test('the type-text box types pasted text as keystrokes (US layout)', async () => {
    await unlockPointer(page);
    await page.fill('#console-text', 'echo "Box: ~|{x}_(y)" > /tmp/u\n');
    await page.click('#console-type');
    assert.equal(
      await until('typed-box file', async () => (await exec('cat /tmp/u 2>/dev/null')).stdout.trim() || undefined),
      'Box: ~|{x}_(y)',
    );
  });

  test('keys go by physical position: a German-style guest keymap gets its own characters, AltGr included', async () => {
    // busybox has no loadkeys, but dumpkmap/loadkmap move binary keymaps: take the guest's US map, swap Y and Z
    // (tables plain and shift) and put @ { } on AltGr+Q, AltGr+7, AltGr+0 (table 2) as a German layout has them.
    const us = Buffer.from((await exec('dumpkmap | base64 -w0')).stdout.trim(), 'base64');
    assert.equal(us.subarray(0, 7).toString('latin1'), 'bkeymap');
    const de = Buffer.from(us);
    const tables = [...de.subarray(7, 7 + 256)].map((f, i) => (f === 1 ? i : -1)).filter((i) => i >= 0);
    const entry = (table: number, key: number) => 7 + 256 + tables.indexOf(table) * 256 + key * 2;
    for (const tbl of [0, 1]) {
      const y = de.readUInt16LE(entry(tbl, 21));
      de.writeUInt16LE(de.readUInt16LE(entry(tbl, 44)), entry(tbl, 21));
      de.writeUInt16LE(y, entry(tbl, 44));
    }
    de.writeUInt16LE(0x40, entry(2, 16)); // AltGr+Q  @
    de.writeUInt16LE(0x7b, entry(2, 8)); //  AltGr+7  {
    de.writeUInt16LE(0x7d, entry(2, 11)); // AltGr+0  }
    await exec(`echo ${de.toString('base64')} | base64 -d > /tmp/de.kmap && loadkmap < /tmp/de.kmap`);
    try {
      await focusConsole(page);
      await typeKeys(page, 'echo ');
      for (const k of ['KeyZ', 'KeyY', 'AltRight+KeyQ', 'AltRight+Digit7', 'AltRight+Digit0', 'Shift+KeyZ']) {
        await page.keyboard.press(k);
        await new Promise((r) => setTimeout(r, 30));
      }
      await typeKeys(page, ' > /tmp/k\n');
      await unlockPointer(page);
      // The US keys Z and Y typed y and z; AltGr (right Alt, set-1 E0 38) with Q, 7, 0 typed @ { }.
      assert.equal(
        await until('keymap file', async () => (await exec('cat /tmp/k 2>/dev/null')).stdout.trim() || undefined),
        'yz@{}Y',
      );
      // Right Alt went as set-1 E0 38 (QEMU: alt_r), then Q's 0x10.
      assert.match(qemuLog(), /qcode alt_r, down 1\s*\n.*qcode q, down 1/);
    } finally {
      await exec(`echo ${us.toString('base64')} | base64 -d > /tmp/us.kmap && loadkmap < /tmp/us.kmap`);
    }
  });

  test('mouse: a click and motion on the console reach QEMU (server mouse mode: relative)', async () => {
    const q = t.server.ctx.vms.qmp(VM);
    await q.execute('trace-event-set-state', { name: 'input_event_btn', enable: true });
    await q.execute('trace-event-set-state', { name: 'input_event_rel', enable: true });
    assert.equal(await page.getAttribute('.spice-console', 'data-mouse-mode'), 'server'); // PS/2 mouse only, no tablet
    const box = (await page.locator('#console-canvas').boundingBox())!;
    await page.mouse.move(box.x + 200, box.y + 200);
    await page.mouse.down();
    await page.mouse.move(box.x + 260, box.y + 230, { steps: 5 });
    await page.mouse.up();
    await until(
      'click in the QEMU trace',
      async () => /button left, down 1[\s\S]*button left, down 0/.test(qemuLog()) || undefined,
      5000,
    );
    assert.match(qemuLog(), /input_event_rel con -?\d+, axis x, value [1-9]/);
    await unlockPointer(page);
  });

  test('a reload brings the console back; the console URL works for another admin and not for other users', async () => {
    await page.reload();
    await page.waitForSelector('#console-status[data-status=connected]', { timeout: 30_000 });
    assert.equal(await canvasMatchesScreendump(page), 0);

    await t.admin.post('/api/users', { name: 'carol', password: 'carol-password', role: 'admin' });
    await t.admin.post('/api/users', { name: 'bob', password: 'bob-password', role: 'user' });
    const other = await browser.newContext({ viewport: { width: 1024, height: 768 } });
    try {
      const p2 = await other.newPage();
      await signIn(p2, t.url, 'carol', 'carol-password', `/vms/${VM}/console`);
      await p2.waitForSelector('#console-status[data-status=connected]', { timeout: 30_000 });
      assert.equal(await canvasMatchesScreendump(p2), 0);
      await p2.click('#logout');
      await p2.waitForSelector('#login-username');
      await signIn(p2, t.url, 'bob', 'bob-password', `/vms/${VM}/console`);
      // The page shows "Loading…" until the API answers; wait for the answer.
      await p2.waitForSelector('#vm-missing.error', { timeout: 15_000 });
      assert.match(await p2.textContent('#vm-missing') ?? '', /belongs to another user/);
      // Straight from bob's page, same origin, his cookie: both console WebSockets are refused before opening.
      const outcome = await p2.evaluate(
        (vm) =>
          Promise.all(
            ['spice', 'serial'].map(
              (kind) =>
                new Promise<string>((resolve) => {
        const ws = new WebSocket(`ws://${location.host}/api/vms/${vm}/${kind}`);
        ws.onopen = () => resolve('open');
        ws.onclose = (e) => resolve(`closed ${e.code}`);
      }),
            ),
          ),
        VM,
      );
      assert.deepEqual(outcome, ['closed 1006', 'closed 1006']);
    } finally {
      await other.close();
    }
  });

  test('console WebSockets: no session, a bad origin, another user are refused (HTTP status at the upgrade)', async () => {
    const status = (path: string, headers: Record<string, string>) => new Promise<number | 'open'>((resolve) => {
      const ws = new WebSocket(`${t.url.replace('http', 'ws')}${path}`, { headers });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => { resolve('open'); ws.close(); });
      ws.on('error', () => undefined);
    });
    const login = await t.anon.post('/api/auth/login', { username: 'bob', password: 'bob-password' });
    const bob = login.headers.get('set-cookie')!.split(';')[0]!;
    const adminLogin = await t.anon.post('/api/auth/login', { username: 'admin', password: ADMIN_PASSWORD });
    const admin = adminLogin.headers.get('set-cookie')!.split(';')[0]!;
    const origin = t.url;
    for (const kind of ['spice', 'serial']) {
      const path = `/api/vms/${VM}/${kind}`;
      assert.equal(await status(path, { origin }), 401, `${kind}: no session`);
      assert.equal(await status(path, { cookie: admin, origin: 'http://evil.example' }), 403, `${kind}: bad origin`);
      assert.equal(await status(path, { cookie: bob, origin }), 403, `${kind}: another user's VM`);
    }
    assert.equal(await status(`/api/vms/${VM}/serial`, { cookie: admin, origin }), 'open');
  });

  test('the serial console is interactive and shared between viewers', async () => {
    await page.goto(`${t.url}/vms/${VM}?tab=serial`);
    await page.waitForSelector('#serial-status[data-status=connected]');
    const p2 = await ctx.newPage();
    try {
      await p2.goto(`${t.url}/vms/${VM}?tab=serial`);
      await p2.waitForSelector('#serial-status[data-status=connected]');
      await page.click('#serial-terminal');
      await page.keyboard.type('echo serial-$((40+2)) > /tmp/s; echo done-$((6*7))', { delay: 20 });
      await page.keyboard.press('Enter');
      assert.equal(
        await until('serial file', async () => (await exec('cat /tmp/s 2>/dev/null')).stdout.trim() || undefined),
        'serial-42',
      );
      // The other viewer sees the output (done-42 appears only as output, not in the echoed command line).
      await until(
        'output in the second viewer',
        async () => (await p2.textContent('#serial-terminal .xterm-rows'))?.includes('done-42') || undefined,
        10_000,
      );
    } finally {
      await p2.close();
    }
  });

  test('lifecycle from the UI: force off (confirmed), the console waits, start, it reconnects by itself; delete asks first', async () => {
    await openConsole(page);
    await page.goto(`${t.url}/vms/${VM}`);
    await page.waitForSelector('#console-status[data-status=connected]', { timeout: 30_000 });
    await page.click(`#vm-${VM}-force-stop`);
    await page.click('#confirm-ok');
    await page.waitForSelector(`#vm-${VM}-state[data-state=stopped]`, { timeout: 30_000 });
    await page.waitForSelector('#console-status[data-status=vm-off]');
    await page.click(`#vm-${VM}-start`);
    await page.waitForSelector('#console-status[data-status=connected]', { timeout: 60_000 });
    await exec('true');
    await page.waitForSelector(`#vm-${VM}-state[data-state=running]`);
    assert.equal(await page.textContent('#vm-ram'), '160 MiB, in huge pages', 'the page says how the RAM is backed');

    // The console in use, for the README.
    await openConsole(page);
    await focusConsole(page);
    await typeKeys(page, 'uname -a; echo "Hello from the Oriel web console"\n', 10);
    await unlockPointer(page);
    await page.waitForTimeout(1500);
    await page.screenshot({ path: join(DOCS, 'console.png') });

    await page.goto(`${t.url}/vms/${VM}`);
    await page.click(`#vm-${VM}-force-stop`);
    await page.click('#confirm-ok');
    await page.waitForSelector(`#vm-${VM}-state[data-state=stopped]`, { timeout: 30_000 });
    await page.click(`#vm-${VM}-delete`);
    await page.click('#confirm-cancel');
    assert.equal((await t.admin.get(`/api/vms/${VM}`)).status, 200, 'cancel keeps the VM');
    await page.click(`#vm-${VM}-delete`);
    await page.click('#confirm-ok');
    await until('VM deleted', async () => (await t.admin.get(`/api/vms/${VM}`)).status === 404 || undefined);
    assert.deepEqual(pageErrors, []);
  });
});
