// Headless screenshot: `oriel console screenshot spice+unix://…` against spice-gtk's `spicy-screenshot` (Debian
// spice-client-gtk), on the same still picture of the desktop guest (-vga qxl, 1024×768). Each run is a whole process,
// from spawn to exit with the picture written; the two alternate (A B A B …, after one warm-up each) so a drift of
// the machine's speed hits both. Both connect through the same counting relay in front of QEMU's SPICE unix socket:
// the bytes the server sent each (all channels, link included) and how many channels each opened. Every picture is
// checked pixel for pixel against QMP screendump. Prints numbers; judges nothing. The booted guest's SPICE is on
// loopback TCP with a password (as the server runs VMs); the relay listens on a unix socket for the clients.
// Usage: node --import tsx bench/display.ts [runs=7]
//          [--socket /path/spice.sock --qmp /path/qmp.sock]   reuse a running VM instead of booting the desktop guest
//          [--also /other/checkout/bin/oriel.js]               time another oriel too (e.g. before a change)
// The boot (without --socket) takes about a minute of both cores: run it under the guest lock
// (flock /tmp/oriel-guest.lock node --import tsx bench/display.ts).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PNG } from 'pngjs';
import { startDesktopVm } from '../test/helpers/desktop.ts';
import { startTestServer, type TestServer } from '../test/helpers/server.ts';
import { Qmp, parsePpm, type Ppm } from '../test/spice/helpers/qemu.ts';
import { SpiceRelay } from '../test/spice/helpers/relay.ts';
import { readSpiceEndpoint } from '../src/vm/spice-endpoint.ts';

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const positional = argv.filter((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--'));
const RUNS = Number(positional[0] ?? 7);
const BIN = join(import.meta.dirname, '../bin/oriel.js');
const dir = mkdtempSync(join(tmpdir(), 'obench-display-'));

/** Runs a command to its end; milliseconds from spawn to exit. */
function timed(cmd: string, args: string[]): Promise<{ ms: number; code: number; out: string }> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('close', (code) => resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, code: code ?? -1, out }));
  });
}

/** RGB pixels of a picture file (PNG or PPM) that differ from the screendump; -1 if the sizes differ. */
function differing(file: string, dump: Ppm): number {
  const buf = readFileSync(file);
  const pic = file.endsWith('.png') ? PNG.sync.read(buf) : undefined;
  const ppm = pic ? undefined : parsePpm(buf);
  const [w, h] = pic ? [pic.width, pic.height] : [ppm!.width, ppm!.height];
  if (w !== dump.width || h !== dump.height) return -1;
  let n = 0;
  for (let i = 0, j = 0; i < dump.rgb.length; i += 3, j += 4) {
    const px = pic ? [pic.data[j], pic.data[j + 1], pic.data[j + 2]] : [ppm!.rgb[i], ppm!.rgb[i + 1], ppm!.rgb[i + 2]];
    if (px[0] !== dump.rgb[i] || px[1] !== dump.rgb[i + 1] || px[2] !== dump.rgb[i + 2]) n++;
  }
  return n;
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { min: s[0]!, median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, max: s.at(-1)! };
};

async function main() {
  const spicy = spawnSync('spicy-screenshot', ['--version']);
  if (spicy.status !== 0) throw new Error('spicy-screenshot does not run (apt-get install spice-client-gtk)');
  let t: TestServer | undefined;
  const spiceSocket = opt('--socket');
  let spicePort: number | undefined;
  let password = '';
  let dumpTo: (file: string) => Promise<void>;
  let qmp: Qmp | undefined;
  if (spiceSocket) {
    const qmpPath = opt('--qmp');
    if (!qmpPath) throw new Error('--socket needs --qmp (for the screendump check)');
    qmp = await Qmp.open(qmpPath);
    dumpTo = async (filename) => void (await qmp!.execute('screendump', { filename, format: 'ppm' }));
  } else {
    t = await startTestServer();
    const vm = await startDesktopVm(t, 'bench');
    console.log(`desktop guest ready in ${(vm.bootMs / 1000).toFixed(1)} s`);
    const vms = t.server.ctx.vms;
    const ep = readSpiceEndpoint(vms.paths(vms.records.byName('bench')!));
    if (!ep) throw new Error('the VM has no SPICE TCP endpoint');
    [spicePort, password] = [ep.port, ep.password];
    dumpTo = async (filename) => void (await vms.qmp('bench').execute('screendump', { filename, format: 'ppm' }));
  }
  const dump = async () => {
    const f = join(dir, 'dump.ppm');
    await dumpTo(f);
    return parsePpm(readFileSync(f));
  };
  const relay = await SpiceRelay.start({
    ...(spicePort ? { upstreamPort: spicePort } : { upstreamPath: spiceSocket }),
    listenPath: join(dir, 'relay.sock'),
  });
  try {
    // A still picture: two screendumps a second apart that agree (up to a minute).
    let prev = await dump();
    for (let i = 0; ; i++) {
      await sleep(1000);
      const cur = await dump();
      if (Buffer.compare(prev.rgb, cur.rgb) === 0) break;
      if (i >= 60) throw new Error('the guest picture never stood still');
      prev = cur;
    }
    const uri = `spice+unix://${relay.path}`;
    const also = opt('--also');
    const pw = password ? ['--password', password] : [];
    const clients = [
      { name: 'spicy-screenshot', out: join(dir, 'spicy.ppm'), cmd: 'spicy-screenshot', args: [`--uri=${uri}`, ...(password ? ['-w', password] : [])] },
      { name: 'oriel console', out: join(dir, 'oriel.png'), cmd: process.execPath, args: [BIN, 'console', 'screenshot', ...pw, uri] },
      ...(also ? [{ name: 'oriel (--also)', out: join(dir, 'also.png'), cmd: process.execPath, args: [also, 'console', 'screenshot', ...pw, uri] }] : []),
    ];
    const commands = Object.fromEntries(clients.map((c) => [c.name, () =>
      timed(c.cmd, c.name === 'spicy-screenshot' ? [...c.args, '-o', c.out] : [...c.args, c.out])]));
    const out = Object.fromEntries(clients.map((c) => [c.name, c.out]));
    const rows = Object.fromEntries(clients.map((c) => [c.name,
      { ms: [] as number[], kb: [] as number[], channels: 0, exact: 0, how: new Map<string, number>() }]));
    for (let i = -1; i < RUNS; i++) {
      for (const { name } of clients) {
        relay.reset();
        const r = await commands[name]!();
        if (r.code !== 0) throw new Error(`${name} failed (${r.code}): ${r.out}`);
        await sleep(100); // the last bytes through the relay
        if (i < 0) continue; // warm-up
        const row = rows[name]!;
        row.ms.push(r.ms);
        row.kb.push(relay.totalDown / 1024);
        row.channels = relay.channels.length;
        if (differing(out[name]!, await dump()) === 0) row.exact++;
        const how = /picture complete: (\w+)/.exec(r.out)?.[1];
        if (how) row.how.set(how, (row.how.get(how) ?? 0) + 1);
      }
    }
    const f = (x: number) => x.toFixed(x < 100 ? 1 : 0);
    const { width, height } = await dump();
    console.log(`\nscreenshot of a still ${width}×${height} desktop over a SPICE unix socket, ${RUNS} runs each ` +
      `(alternating, after a warm-up), load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
    console.log('client            ms min   median      max   KB min   median      max  channels  exact  completed by');
    for (const { name } of clients) {
      const r = rows[name]!;
      const ms = stats(r.ms);
      const kb = stats(r.kb);
      const how = [...r.how].map(([k, v]) => `${k} ×${v}`).join(', ') || '-';
      console.log(
        `${name.padEnd(16)}` +
          [ms.min, ms.median, ms.max, kb.min, kb.median, kb.max].map((x) => f(x).padStart(9)).join('') +
          `${String(r.channels).padStart(10)}${`${r.exact}/${RUNS}`.padStart(7)}  ${how}`,
      );
    }
    const spicyRow = rows['spicy-screenshot']!;
    for (const { name } of clients.slice(1)) {
      const ratio = stats(rows[name]!.ms.map((x, i) => x / spicyRow.ms[i]!));
      const kbRatio = stats(rows[name]!.kb.map((x, i) => x / spicyRow.kb[i]!));
      console.log(`${name} / spicy-screenshot, pair by pair: time ×${ratio.median.toFixed(2)} median ` +
        `(min ×${ratio.min.toFixed(2)}, max ×${ratio.max.toFixed(2)}); bytes ×${kbRatio.median.toFixed(2)}`);
    }
  } finally {
    await relay.close();
    qmp?.close();
    await t?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
