// Slow links: `oriel console screenshot VM` (through the server's console proxy, which reaches QEMU over loopback
// TCP with the VM's password, so spice-server measures the link and compresses for it) beside spice-gtk's
// `spicy-screenshot` (Debian spice-client-gtk, straight to QEMU's SPICE port), each across the same user-space
// shaped link (test/helpers/shaped-relay.ts: paced and delayed each way) — Oriel's in front of the server's HTTP
// port, spicy's in front of QEMU's. Per link: time from process start to the picture written, bytes each way
// across the link, and how close the picture is to QMP screendump (PSNR; JPEG on a slow link is lossy). The two
// clients alternate (A B A B …, after one warm-up each). Prints numbers; judges nothing.
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
import { startTestServer } from '../test/helpers/server.ts';
import { ShapedRelay, type LinkShape } from '../test/helpers/shaped-relay.ts';
import { parsePpm, type Ppm } from '../test/spice/helpers/qemu.ts';
import { readSpiceEndpoint } from '../src/vm/spice-endpoint.ts';

const RUNS = Number(process.argv[2] ?? 3);
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
try {
  const vm = await startDesktopVm(t, VM);
  console.log(`desktop guest ready in ${(vm.bootMs / 1000).toFixed(1)} s`);
  const vms = t.server.ctx.vms;
  const ep = readSpiceEndpoint(vms.paths(vms.get(VM)));
  if (!ep) throw new Error('the VM has no SPICE TCP endpoint');
  const dump = async () => {
    const f = join(dir, 'dump.ppm');
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
        if (r.code !== 0) throw new Error(`${c.name} failed (${r.code}): ${r.out}`);
        await sleep(link.rttMs + 300); // the client's goodbye crosses the link; QEMU forgets the client
        if (i < 0) continue;
        rows[k]!.ms.push(r.ms);
        rows[k]!.down.push(c.relay.bytesDown / 1024);
        rows[k]!.up.push(c.relay.bytesUp / 1024);
        rows[k]!.q.push(psnr(c.out, await dump()));
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
} finally {
  await t.destroy();
  rmSync(dir, { recursive: true, force: true });
}
