// Browser first picture: Oriel's web console against spice-html5 (Debian's spice-html5 package), same guest, same
// run. Boots the desktop guest through a test server, waits until its screen is still, then alternately loads
//   oriel        /vms/NAME/console (signed in by the session cookie; the console proxy to the VM's SPICE socket)
//   spice-html5  the package's client (/usr/share/spice-html5, served by this script over HTTP, page = its
//                spice_auto.html minus the agent resize) through websockify --unix-target=<the VM's SPICE socket>
// and Oriel again with the server's screen picture off (ORIEL_CONSOLE_PREVIEW=off: SPICE's own first picture),
// in Debian's chromium (playwright-core, as the browser tests launch it; driven from a child process, display-browser-
// client.ts, so that Playwright does not load the server's process), each in a fresh browser context (cold
// cache), and measures navigation start → the page's canvas equals QMP screendump (RGB, every pixel), plus the
// WebSocket bytes the page received until then (and the screen picture's HTTP bytes). Prints min/median/max and the
// goal: Oriel ≤ half of spice-html5.
// Usage: node --import tsx bench/display-browser.ts [runsPerClient=5] [--breakdown]
//   --breakdown: also where Oriel's time goes, page and console proxy milestones (bench/display-breakdown.ts)
import { startJsonDriver } from './json-driver.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as netServer } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { startDesktopVm } from '../test/helpers/desktop.ts';
import { ADMIN_PASSWORD, startTestServer } from '../test/helpers/server.ts';
import { parsePpm } from '../test/spice/helpers/qemu.ts';
import { ensureWebBuild } from '../test/web/helpers.ts';
import type { Measured, MeasureRequest } from './display-browser-client.ts';
import { readSpiceEndpoint } from '../src/vm/spice-endpoint.ts';
import { Breakdown } from './display-breakdown.ts';

const RUNS = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 5);
const breakdown = process.argv.includes('--breakdown') ? new Breakdown() : undefined;
const HTML5_DIR = '/usr/share/spice-html5';
const VM = 'bench-desktop';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

if (!existsSync(join(HTML5_DIR, 'main.js'))) throw new Error(`${HTML5_DIR} is missing: apt-get install spice-html5`);
if (!existsSync('/usr/bin/websockify')) throw new Error('websockify is missing: apt-get install websockify');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** The spice_auto.html of the package without its agent hook (that asks the guest to take the window's size). */
function html5Page(wsPort: number, password: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>spice-html5</title>
<link rel="stylesheet" type="text/css" href="spice.css"></head><body>
<div id="login"><span class="logo">SPICE</span></div>
<div id="spice-area"><div id="spice-screen" class="spice-screen"></div></div>
<div id="message-div" class="spice-message"></div><div id="debug-div"></div>
<script type="module" crossorigin="anonymous">
import * as SpiceHtml5 from './main.js';
window.sc = new SpiceHtml5.SpiceMainConn({ uri: 'ws://127.0.0.1:${wsPort}/websockify', screen_id: 'spice-screen',
  dump_id: 'debug-div', message_id: 'message-div', password: ${JSON.stringify(password)}, onerror: (e) => console.log('spice error', e) });
</script></body></html>`;
}

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html' };

function serveHtml5(wsPort: number, password: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/bench.html') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(html5Page(wsPort, password));
      return;
    }
    const file = join(HTML5_DIR, normalize(decodeURIComponent(path)).replace(/^(\.\.[/\\])+/, ''));
    if (!file.startsWith(HTML5_DIR) || !existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve({ server, url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}` });
    }),
  );
}

async function waitPort(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(true)); // in use: websockify listens
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`websockify did not listen on ${port}`);
}

/** bench/display-browser-client.ts in a child process: one request, one answer, in turn. */
const startDriver = () =>
  startJsonDriver<MeasureRequest, Measured>(join(import.meta.dirname, 'display-browser-client.ts'));

interface Run {
  client: string; ms: number; kb: number; pictureKb: number; wsAt: number; firstByteAt: number; scripts: number;
  /** Oriel: when SPICE's display channel first drew (its own first picture follows). */
  spiceDrawAt: number;
}

const t = await startTestServer();
let websockify: ChildProcess | undefined;
let driver: ReturnType<typeof startDriver> | undefined;
let html5: Server | undefined;
const dump = join(tmpdir(), `oriel-bench-browser-${process.pid}.ppm`);
try {
  ensureWebBuild();
  process.stdout.write('booting the desktop guest… ');
  const vm = await startDesktopVm(t, VM);
  console.log(`ready in ${(vm.bootMs / 1000).toFixed(1)} s`);
  const qmp = () => t.server.ctx.vms.qmp(VM);
  const screendump = async () => {
    await qmp().execute('screendump', { filename: dump, format: 'ppm' });
    return parsePpm(readFileSync(dump));
  };
  // A still picture: two screendumps 2 s apart agree.
  let ref = await screendump();
  for (let i = 0; ; i++) {
    await sleep(2000);
    const next = await screendump();
    if (Buffer.from(next.rgb).equals(Buffer.from(ref.rgb))) break;
    if (i > 30) throw new Error('the guest screen did not settle');
    ref = next;
  }
  console.log(`still picture ${ref.width}×${ref.height}`);

  // The VM's SPICE is on loopback TCP with a password (vm/spice-endpoint.ts); spice-html5's page is given it.
  const ep = readSpiceEndpoint(t.server.ctx.vms.paths(t.server.ctx.vms.get(VM)));
  if (!ep) throw new Error('the VM has no SPICE TCP endpoint');
  const wsPort = await freePort();
  websockify = spawn('websockify', [`127.0.0.1:${wsPort}`, `127.0.0.1:${ep.port}`], { stdio: 'ignore' });
  await waitPort(wsPort, 10_000);
  const served = await serveHtml5(wsPort, ep.password);
  html5 = served.server;

  const login = await t.anon.post('/api/auth/login', { username: 'admin', password: ADMIN_PASSWORD });
  const cookie = /oriel_session=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')?.[1];
  if (!cookie) throw new Error('no session cookie from /api/auth/login');

  // The browser is driven from another process: Playwright's traffic (every WebSocket frame is reported to it)
  // must not load the process that runs the Oriel server.
  driver = startDriver();
  const clients = {
    oriel: { url: `${t.url}/vms/${VM}/console`, selector: '#console-canvas' },
    'oriel-spice': { url: `${t.url}/vms/${VM}/console`, selector: '#console-canvas' },
    'spice-html5': { url: `${served.url}/bench.html`, selector: '#spice-screen canvas' },
  };
  const runs: Run[] = [];
  const measure = async (client: keyof typeof clients): Promise<Run> => {
    const c = clients[client];
    const pic = await screendump();
    if (!Buffer.from(pic.rgb).equals(Buffer.from(ref.rgb))) console.log('  (the guest picture changed; new reference)');
    ref = pic;
    if (client === 'oriel') breakdown?.start();
    t.server.ctx.config.consolePreview = client === 'oriel';
    const r = await driver!.ask({ url: c.url, selector: c.selector, cookieUrl: t.url, cookie, dump,
      thenMark: client === 'spice-html5' ? undefined : 'oriel:first-draw' });
    try {
      if (r.error) throw new Error(r.error);
      console.log(`    ${client}: ${r.detail}`);
      if (client === 'oriel' && breakdown && r.timeOrigin && r.marks) {
        const m = breakdown.add(r.timeOrigin, r.marks, r.ms);
        console.log(`    oriel: ${[...m].map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}`);
        console.log(`    oriel: chunks from QEMU (ms@bytes): ${breakdown.lastChunks}`);
      }
      return { client, ms: r.ms, kb: r.kb, pictureKb: r.pictureKb, wsAt: r.wsAt, firstByteAt: r.firstByteAt,
        scripts: r.scripts, spiceDrawAt: r.marks?.['first-draw'] ?? NaN };
    } finally {
      // spice-server let the client go before the next one links (spice-html5 reaches QEMU directly, not through
      // the proxy's hand-over, server/console/takeover.ts; overlapping clients were seen to crash spice-server).
      await sleep(300);
      for (let i = 0; i < 50; i++) {
        const q = (await qmp().execute('query-spice')) as { channels?: unknown[] };
        if (!q.channels?.length) break;
        await sleep(100);
      }
      await sleep(200);
    }
  };
  // One of each first, unmeasured: the guest, QEMU and the server warm up.
  await measure('oriel');
  await measure('spice-html5');
  for (let i = 0; i < RUNS; i++) {
    for (const client of ['spice-html5', 'oriel', 'oriel-spice'] as const) {
      const r = await measure(client);
      runs.push(r);
      const pic = (r.pictureKb ? ` (picture ${r.pictureKb.toFixed(0)} KB)` : '') +
        (Number.isNaN(r.spiceDrawAt) ? '' : ` SPICE's first draw at ${r.spiceDrawAt.toFixed(0)} ms`);
      console.log(`  ${client.padEnd(12)} ${r.ms.toFixed(0).padStart(5)} ms  ${r.kb.toFixed(0).padStart(6)} KB${pic}` +
        `  (first WebSocket at ${r.wsAt.toFixed(0)} ms, first bytes at ${r.firstByteAt.toFixed(0)} ms, ` +
        `${r.scripts} scripts)  load ${load()}`);
    }
  }
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { min: s[0]!, med: s[Math.floor(s.length / 2)]!, max: s[s.length - 1]! };
  };
  const row = (name: string, xs: number[], ys: number[]) => {
    const a = stats(xs);
    const b = stats(ys);
    return `| ${name.padEnd(11)} | ${[a.min, a.med, a.max].map((v) => v.toFixed(0).padStart(5)).join(' | ')} | ` +
      `${[b.min, b.med, b.max].map((v) => v.toFixed(0).padStart(5)).join(' | ')} |`;
  };
  const of = (c: string) => runs.filter((r) => r.client === c);
  const o = of('oriel');
  const os = of('oriel-spice');
  const h = of('spice-html5');
  console.log(`\nFirst picture in the browser, ${ref.width}×${ref.height} still desktop, ${RUNS} runs each, cold cache`);
  console.log('| client      | ms min | median |   max | KB min | median |   max |');
  console.log('|-------------|-------:|-------:|------:|-------:|-------:|------:|');
  console.log(row('spice-html5', h.map((r) => r.ms), h.map((r) => r.kb)));
  console.log(row('oriel', o.map((r) => r.ms), o.map((r) => r.kb)));
  console.log(row('oriel-spice', os.map((r) => r.ms), os.map((r) => r.kb)));
  console.log('(oriel: the console as it is, the server\'s screen picture first, its HTTP bytes counted; oriel-spice: ' +
    'the same with ORIEL_CONSOLE_PREVIEW=off, SPICE\'s own first picture)');
  const drawn = (rs: Run[]) => stats(rs.map((r) => r.spiceDrawAt).filter((x) => !Number.isNaN(x))).med;
  console.log(`SPICE's first draw (median): oriel ${drawn(o).toFixed(0)} ms, oriel-spice ${drawn(os).toFixed(0)} ms ` +
    '(the cost of the screendump to the SPICE session, if any)');
  const ratio = stats(o.map((r) => r.ms)).med / stats(h.map((r) => r.ms)).med;
  const ratioSpice = stats(os.map((r) => r.ms)).med / stats(h.map((r) => r.ms)).med;
  console.log(`ratio oriel / spice-html5 (medians): ${ratio.toFixed(2)}; oriel-spice / spice-html5: ${
    ratioSpice.toFixed(2)}`);
  console.log(`goal: Oriel's first picture ≤ half of spice-html5's: ${ratio <= 0.5 ? 'MET' : 'NOT MET'}`);
  breakdown?.print();
} finally {
  driver?.close();
  html5?.close();
  if (websockify?.pid) websockify.kill();
  rmSync(dump, { force: true });
  await t.destroy();
}
