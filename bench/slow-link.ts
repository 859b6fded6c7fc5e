// Slow links: `oriel console screenshot VM` (through the server's console proxy, which reaches QEMU over loopback
// TCP with the VM's password, so spice-server measures the link and compresses for it) beside spice-gtk's
// `spicy-screenshot` (Debian spice-client-gtk, straight to QEMU's SPICE port), each across the same user-space
// shaped link (test/helpers/shaped-relay.ts: paced and delayed each way) — Oriel's in front of the server's HTTP
// port, spicy's in front of QEMU's. Per link: time from process start to the picture written, bytes each way
// across the link, and how close the picture is to QMP screendump (PSNR; JPEG on a slow link is lossy). The two
// clients alternate (A B A B …, after one warm-up each). Then the browsers (slow-link-browser.ts): Oriel's web
// console and spice-html5, page load included, each behind the same kind of link: navigation start → the canvas
// agrees with screendump (within JPEG's tolerance), WebSocket bytes into the page and all bytes down the link.
// Prints numbers; judges nothing. `--no-browser` skips the browsers.
// Usage: flock /tmp/oriel-guest.lock node --import tsx bench/slow-link.ts [runs=3]
// (boots the desktop guest: about a minute of both cores; run `node scripts/build-node.js` first so that bin/oriel.js
// runs the compiled CLI).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PNG } from 'pngjs';
import { startDesktopVm } from '../test/helpers/desktop.ts';
import { ShapedRelay, type LinkShape } from '../test/helpers/shaped-relay.ts';
import { parsePpm, type Ppm } from '../test/spice/helpers/qemu.ts';
import { readSpiceEndpoint } from '../src/vm/spice-endpoint.ts';
import { ADMIN_PASSWORD, startTestServer } from '../test/helpers/server.ts';
import { ensureWebBuild } from '../test/web/helpers.ts';
import { startBrowserDriver, startHtml5 } from './slow-link-browser.ts';

const RUNS = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 3);
const BROWSER = !process.argv.includes('--no-browser');
/** Largest difference per colour channel of a pixel that still agrees (JPEG), in the browser. */
const TOLERANCE = 64;
const BIN = join(import.meta.dirname, '../bin/oriel.js');
const VM = 'slow';
const LINKS: (LinkShape & { name: string })[] = [
  { name: 'loopback (shaper at 1 Gbit/s, 0 ms)', bitsPerSecond: 1e9, rttMs: 0 },
  { name: '10 Mbit/s, 40 ms RTT', bitsPerSecond: 10e6, rttMs: 40 },
  { name: '2 Mbit/s, 100 ms RTT', bitsPerSecond: 2e6, rttMs: 100 },
];
const dir = mkdtempSync(join(tmpdir(), 'obench-slow-'));

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return new Promise<{ ms: number; code: number; out: string }>((resolve) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('close', (code) => resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, code: code ?? -1, out }));
  });
}

/** PSNR (dB, RGB) of a picture file against the screendump; Infinity when equal, NaN when the sizes differ. */
function psnr(file: string, dump: Ppm): number {
  const buf = readFileSync(file);
  const png = file.endsWith('.png') ? PNG.sync.read(buf) : undefined;
  const ppm = png ? undefined : parsePpm(buf);
  const [w, h] = png ? [png.width, png.height] : [ppm!.width, ppm!.height];
  if (w !== dump.width || h !== dump.height) return NaN;
  let se = 0;
  for (let i = 0, j = 0; i < dump.rgb.length; i += 3, j += 4) {
    for (let c = 0; c < 3; c++) {
      const v = png ? png.data[j + c]! : ppm!.rgb[i + c]!;
      se += (v - dump.rgb[i + c]!) ** 2;
    }
  }
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255) / (se / dump.rgb.length));
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

if (spawnSync('spicy-screenshot', ['--version']).status !== 0)
  throw new Error('spicy-screenshot does not run (apt-get install spice-client-gtk)');
const t = await startTestServer();
let stopBrowser = () => {};
try {
  const vm = await startDesktopVm(t, VM);
  console.log(`desktop guest ready in ${(vm.bootMs / 1000).toFixed(1)} s`);
  const vms = t.server.ctx.vms;
  const ep = readSpiceEndpoint(vms.paths(vms.get(VM)));
  if (!ep) throw new Error('the VM has no SPICE TCP endpoint');
  const dump = async (f = join(dir, 'dump.ppm')) => {
    await vms.qmp(VM).execute('screendump', { filename: f, format: 'ppm' });
    return parsePpm(readFileSync(f));
  };
  let prev = await dump();
  for (let i = 0; ; i++) {
    await sleep(1000);
    const cur = await dump();
    if (Buffer.compare(prev.rgb, cur.rgb) === 0) break;
    if (i >= 60) throw new Error('the guest picture never stood still');
    prev = cur;
  }
  const serverPort = Number(new URL(t.url).port);
  const table: string[] = [];
  const browserTable: string[] = [];
  let browser: { driver: ReturnType<typeof startBrowserDriver>; html5: { port: number; stop(): void };
    cookie: string } | undefined;
  if (BROWSER) {
    ensureWebBuild();
    const login = await t.anon.post('/api/auth/login', { username: 'admin', password: ADMIN_PASSWORD });
    const cookie = /oriel_session=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')?.[1];
    if (!cookie) throw new Error('no session cookie from /api/auth/login');
    browser = { driver: startBrowserDriver(), html5: await startHtml5(ep.port, ep.password), cookie };
  }
  stopBrowser = () => {
    browser?.driver.close();
    browser?.html5.stop();
  };
  for (const link of LINKS) {
    const viaOriel = await ShapedRelay.start(serverPort, link);
    const viaSpicy = await ShapedRelay.start(ep.port, link);
    const clients = [
      {
        name: 'oriel console screenshot', relay: viaOriel, out: join(dir, 'oriel.png'),
        run: (out: string) => timed(process.execPath, [BIN, 'console', 'screenshot', VM, out],
          { ORIEL_URL: `http://127.0.0.1:${viaOriel.port}`, ORIEL_TOKEN: t.adminToken }),
      },
      {
        name: 'spicy-screenshot', relay: viaSpicy, out: join(dir, 'spicy.ppm'),
        // The password on its command line: a throwaway guest of this bench only.
        run: (out: string) => timed('spicy-screenshot', ['-h', '127.0.0.1', '-p', String(viaSpicy.port),
          '-w', ep.password, '-o', out]),
      },
    ];
    const rows = clients.map(() => ({ ms: [] as number[], down: [] as number[], up: [] as number[],
      q: [] as number[] }));
    for (let i = -1; i < RUNS; i++) {
      for (const [k, c] of clients.entries()) {
        c.relay.reset();
        const r = await c.run(c.out);
        await sleep(link.rttMs + 300); // the client's goodbye crosses the link; QEMU forgets the client
        if (r.code !== 0) console.log(`  ${c.name} failed (exit ${r.code}): ${r.out.trim().split('\n')[0]}`);
        if (i < 0 || r.code !== 0) continue;
        rows[k]!.ms.push(r.ms);
        rows[k]!.down.push(c.relay.bytesDown / 1024);
        rows[k]!.up.push(c.relay.bytesUp / 1024);
        rows[k]!.q.push(psnr(c.out, await dump()));
      }
    }
    if (browser) {
      const viaHtml5 = await ShapedRelay.start(browser.html5.port, link);
      const pages = [
        { name: 'oriel web console', relay: viaOriel, url: `http://127.0.0.1:${viaOriel.port}/vms/${VM}/console`,
          selector: '#console-canvas' },
        { name: 'spice-html5', relay: viaHtml5, url: `http://127.0.0.1:${viaHtml5.port}/bench.html`,
          selector: '#spice-screen canvas' },
      ];
      const got = pages.map(() => ({ ms: [] as number[], ws: [] as number[], down: [] as number[], fail: 0 }));
      for (let i = -1; i < RUNS; i++) {
        for (const [k, pg] of pages.entries()) {
          pg.relay.reset();
          await dump(join(dir, 'ref.ppm'));
          const r = await browser.driver.ask({ url: pg.url, selector: pg.selector, dump: join(dir, 'ref.ppm'),
            cookieUrl: `http://127.0.0.1:${viaOriel.port}`, cookie: browser.cookie, tolerance: TOLERANCE });
          await sleep(link.rttMs + 1500); // the page is closed; spice-server notices before the next client links
          if (i < 0) continue;
          if (r.error) {
            got[k]!.fail++;
            console.log(`  ${pg.name}: ${r.error.split('\n')[0]}`);
            continue;
          }
          got[k]!.ms.push(r.ms);
          got[k]!.ws.push(r.kb);
          got[k]!.down.push(pg.relay.bytesDown / 1024);
        }
      }
      await viaHtml5.close();
      for (const [k, pg] of pages.entries()) {
        const g = got[k]!;
        const f = (x: number) => x.toFixed(0);
        browserTable.push(g.ms.length
          ? `| ${link.name} | ${pg.name} | ${f(median(g.ms))} (${f(Math.min(...g.ms))}–${f(Math.max(...g.ms))}) | ` +
            `${f(median(g.ws))} | ${f(median(g.down))} | ${g.fail ? `${g.fail} of ${RUNS} never agreed` : ''} |`
          : `| ${link.name} | ${pg.name} | – | – | – | ${g.fail} of ${RUNS} never agreed |`);
      }
    }
    await viaOriel.close();
    await viaSpicy.close();
    for (const [k, c] of clients.entries()) {
      const r = rows[k]!;
      const f = (x: number) => (x === Infinity ? 'exact' : x.toFixed(x < 100 ? 1 : 0));
      table.push(`| ${link.name} | ${c.name} | ${f(median(r.ms))} (${f(Math.min(...r.ms))}–${f(Math.max(...r.ms))}) | ` +
        `${f(median(r.down))} | ${f(median(r.up))} | ${f(Math.min(...r.q))} |`);
    }
    console.log(`${link.name}: done`);
  }
  const { width, height } = await dump();
  console.log(`\nfirst picture of a still ${width}×${height} desktop (qxl) across a shaped link, median of ${RUNS} ` +
    `(min–max), load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  console.log('| link | client | ms start → picture | KB down | KB up | PSNR dB (worst) |');
  console.log('|---|---|---|---|---|---|');
  for (const row of table) console.log(row);
  if (browserTable.length) {
    console.log(`\nthe same picture in chromium (cold cache, page load included), canvas within ±${TOLERANCE} per ` +
      'channel of screendump on 99.5 % of pixels; median (min–max)');
    console.log('| link | client | ms navigation → picture | KB WebSocket in the page | KB down the link | |');
    console.log('|---|---|---|---|---|---|');
    for (const row of browserTable) console.log(row);
  }
} finally {
  stopBrowser();
  await t.destroy();
  rmSync(dir, { recursive: true, force: true });
}
