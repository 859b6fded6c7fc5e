// Frames per second of a moving window: Oriel's web console against spice-html5 (Debian's spice-html5, through
// websockify), spicy (spice-gtk's test client) and remote-viewer (virt-viewer), the last two under Xvfb, in one run,
// on the desktop guest (-vga qxl, 1024×768; started from the saved desktop through a test server). A second xterm
// (allowWindowOps) moves its own window on the escape sequence CSI 3;x;y t, written by a loop in the guest every
// MOVE_MS for SECONDS seconds, to and fro along a line.
//
// Each client is connected alone, through the same counting relay in front of QEMU's SPICE port
// (test/spice/helpers/relay.ts with display-fps-tap.ts), so every number but the last is taken the same way for all:
//   moves/s      the escapes the guest loop wrote, per second (what was asked of the guest's X server)
//   draw/s       display-channel drawing messages (COPY_BITS, DRAW_*, stream frames) that reached the client
//   frames/s     the 1/60 s slots in which at least one of them arrived: the frames a client painting at 60 Hz
//                could show at most
//   KB/s         display-channel bytes that reached the client
//   lag ms       from the end of those SECONDS to the last drawing message (what was still queued for the client,
//                and Xorg's last repaints, some of which change no pixel)
//   painted fps  browsers only: animation frames whose canvas (the band the window moves in) differed from the frame
//                before (display-fps-page.ts, the same code in both pages); the native clients paint into their X
//                server and are not counted
// over SECONDS from the first drawing message on the screen (surface 0; Xorg's qxl driver also draws into off-screen
// surfaces, its pixmaps, which are not counted) after the guest loop was started. The log has each run's timeline.
// The relay sits between the client (for Oriel: its server's console proxy, whose SPICE port file is pointed at the
// relay for that run; for spice-html5: websockify) and QEMU; on the shaped link the shaper
// (test/helpers/shaped-relay.ts) sits between the relay and QEMU, the same place for every client.
// Usage: flock /tmp/oriel-guest.lock node --import tsx bench/display-fps.ts [seconds=10] [--runs 1] [--only a,b]
//          [--no-shaped]
//   (clients: oriel, spice-html5, spicy, remote-viewer; needs Debian's xvfb and virt-viewer for the last two).
//   With --runs N the clients take turns N times on each link; the table gives medians (frames/s and painted fps
//   with min–max).
import { startJsonDriver } from './json-driver.ts';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDesktopVm } from '../test/helpers/desktop.ts';
import { ADMIN_PASSWORD, startTestServer } from '../test/helpers/server.ts';
import { ShapedRelay, type LinkShape } from '../test/helpers/shaped-relay.ts';
import { parsePpm } from '../test/spice/helpers/qemu.ts';
import { SpiceRelay } from '../test/spice/helpers/relay.ts';
import { ensureWebBuild } from '../test/web/helpers.ts';
import { readSpiceEndpoint } from '../src/vm/spice-endpoint.ts';
import type { FpsAnswer, FpsCommand } from './display-fps-client.ts';
import { DisplayTap, frames } from './display-fps-tap.ts';
import { startHtml5 } from './slow-link-browser.ts';

const argv = process.argv.slice(2);
const opt = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const SECONDS = Number(argv.find((a, i) => !a.startsWith('--') && !argv[i - 1]?.startsWith('--')) ?? 10);
const RUNS = Number(opt('--runs') ?? 1);
const only = opt('--only')?.split(',');
const MOVE_MS = 16;
const VM = 'fps';
/** The moving xterm's top and the canvas rows it moves through (with its window frame). */
const WINDOW_Y = 260;
const ROWS: [number, number] = [WINDOW_Y - 40, WINDOW_Y + 260];
const LINKS: (LinkShape & { name: string })[] = [
  { name: 'loopback', bitsPerSecond: 0, rttMs: 0 },
  ...(argv.includes('--no-shaped') ? [] : [{ name: '10 Mbit/s 40 ms', bitsPerSecond: 10e6, rttMs: 40 }]),
];
const dir = mkdtempSync(join(tmpdir(), 'obench-fps-'));
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** The guest's loop: moves the xterm on `$1` every MOVE_MS for `$2` seconds, prints how many moves it made. */
const MOVER = `tty=$1; end=$(( \${EPOCHREALTIME/./} + $2 * 1000000 )); n=0; x=40; dx=12
rm -f /tmp/fps-fifo; mkfifo /tmp/fps-fifo; exec 3<>/tmp/fps-fifo
while [ \${EPOCHREALTIME/./} -lt $end ]; do
  printf '\\033[3;%d;%dt' $x ${WINDOW_Y} > $tty; n=$((n + 1)); x=$((x + dx))
  if [ $x -gt 560 ] || [ $x -lt 40 ]; then dx=$((-dx)); fi
  read -t ${(MOVE_MS / 1000).toFixed(3)} -u 3
done; echo $n`;

/** bench/display-fps-client.ts in a child process: one command, one answer, in turn. */
function startDriver() {
  const d = startJsonDriver<FpsCommand, FpsAnswer>(join(import.meta.dirname, 'display-fps-client.ts'));
  return {
    async ask(c: FpsCommand): Promise<FpsAnswer> {
      const a = await d.ask(c);
      if (a.error) throw new Error(`browser: ${a.error}`);
      return a;
    },
    close: d.close,
  };
}

/** A native client under its own Xvfb (xvfb-run -a), in its own process group so that all of it ends together. */
function underXvfb(args: string[]): { stop(): void } {
  const p: ChildProcess = spawn('xvfb-run', ['-a', '-s', '-screen 0 1280x1024x24', ...args],
    { stdio: 'ignore', detached: true });
  return { stop: () => { try { process.kill(-p.pid!, 'SIGTERM'); } catch { /* ended */ } } };
}

interface Row {
  link: string; client: string; moves: number; draw: number; frames: number; kbps: number; lagMs: number;
  painted?: number; readMs?: number; note: string;
}

const t = await startTestServer();
const driver = startDriver();
const rows: Row[] = [];
try {
  ensureWebBuild();
  const vm = await startDesktopVm(t, VM);
  console.log(`desktop guest ${vm.restored ? 'restored' : 'booted'} in ${(vm.bootMs / 1000).toFixed(1)} s`);
  const vms = t.server.ctx.vms;
  const paths = vms.paths(vms.get(VM));
  const ep = readSpiceEndpoint(paths);
  if (!ep) throw new Error('the VM has no SPICE TCP endpoint');
  const qmp = () => vms.qmp(VM);
  const screenSize = async () => {
    const f = join(dir, 'dump.ppm');
    await qmp().execute('screendump', { filename: f, format: 'ppm' });
    const p = parsePpm(readFileSync(f));
    return `${p.width}×${p.height}`;
  };
  const size0 = await screenSize();
  const sh = async (script: string, args: string[] = [], timeoutMs = 60_000) => {
    const r = await vm.execAsUser(['bash', '-c', script, 'sh', ...args], { timeoutMs });
    if (r.exitCode !== 0) throw new Error(`guest: ${script} → ${r.exitCode}: ${r.stderr}`);
    return r.stdout.trim();
  };
  await sh("rm -f /tmp/fps-tty; setsid -f xterm -xrm 'XTerm*allowWindowOps: true' -bg '#203040' -fg '#e0d060' " +
    `-geometry 48x12+40+${WINDOW_Y} -e sh -c 'tty > /tmp/fps-tty; exec sleep 1000000' > /dev/null 2>&1`);
  let tty = '';
  for (let i = 0; i < 120 && !tty; i++) {
    tty = await sh('cat /tmp/fps-tty 2>/dev/null || true');
    if (!tty) await sleep(500);
  }
  if (!/^\/dev\/pts\/\d+$/.test(tty)) throw new Error(`the moving xterm did not start (${tty})`);

  const login = await t.anon.post('/api/auth/login', { username: 'admin', password: ADMIN_PASSWORD });
  const cookie = /oriel_session=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')?.[1];
  if (!cookie) throw new Error('no session cookie from /api/auth/login');
  const portFile = readFileSync(paths.spicePort, 'utf8');

  type Open = (relayPort: number) => Promise<{ close(): Promise<void>; browser: boolean }>;
  const browserPage = (url: string, selector: string) => async () => {
    await driver.ask({ cmd: 'open', url, selector, rows: ROWS, cookieUrl: t.url, cookie });
    return { browser: true, close: async () => void (await driver.ask({ cmd: 'close' })) };
  };
  const clients: Record<string, Open | string> = {
    oriel: async (port) => {
      // The console proxy reads the port file at each dial: this run's channels go through the relay.
      writeFileSync(paths.spicePort, String(port), { mode: 0o600 });
      const page = await browserPage(`${t.url}/vms/${VM}/console`, '#console-canvas')();
      return { browser: true, close: async () => {
        await page.close();
        writeFileSync(paths.spicePort, portFile, { mode: 0o600 });
      } };
    },
    'spice-html5': async (port) => {
      const html5 = await startHtml5(port, ep.password);
      const page = await browserPage(`http://127.0.0.1:${html5.port}/bench.html`, '#spice-screen canvas')();
      return { browser: true, close: async () => {
        await page.close();
        html5.stop();
      } };
    },
    spicy: has('xvfb-run') && has('spicy')
      ? async (port) => {
        const x = underXvfb(['spicy', '-h', '127.0.0.1', '-p', String(port), '-w', ep.password]);
        return { browser: false, close: async () => x.stop() };
      }
      : 'needs xvfb-run and spicy (apt-get install xvfb xauth spice-client-gtk)',
    'remote-viewer': has('xvfb-run') && has('remote-viewer')
      ? async (port) => {
        const vv = join(dir, 'bench.vv');
        writeFileSync(vv, `[virt-viewer]\ntype=spice\nhost=127.0.0.1\nport=${port}\npassword=${ep.password}\n`,
          { mode: 0o600 });
        const x = underXvfb(['remote-viewer', '--auto-resize=never', vv]);
        return { browser: false, close: async () => x.stop() };
      }
      : 'needs xvfb-run and remote-viewer (apt-get install xvfb xauth virt-viewer)',
  };

  /** Until QEMU lists no SPICE channel: the previous client is gone before the next links. */
  const noClient = async () => {
    for (let i = 0; i < 100; i++) {
      const s = (await qmp().execute('query-spice')) as { channels?: unknown[] };
      if (!s.channels?.length) return;
      await sleep(100);
    }
  };
  /** Until no drawing message came for `quietMs` (after at least one, when `first`). */
  const settled = async (tap: DisplayTap, quietMs: number, first: boolean, maxMs = 30_000) => {
    const end = performance.now() + maxMs;
    while (performance.now() < end) {
      const last = tap.lastDrawnAt;
      if ((!first || last) && performance.now() - Math.max(last, end - maxMs) >= quietMs) return true;
      await sleep(100);
    }
    return false;
  };

  for (const link of LINKS) {
    const shaper = link.bitsPerSecond ? await ShapedRelay.start(ep.port, link) : undefined;
    const tap = new DisplayTap();
    const relay = await SpiceRelay.start({ upstreamPort: shaper?.port ?? ep.port, tap: tap.connection });
    try {
      for (const [run, [name, open]] of Array.from({ length: RUNS }, () => Object.entries(clients)).flat()
        .entries()) {
        if (only && !only.includes(name)) continue;
        if (typeof open === 'string') {
          if (run >= Object.keys(clients).length) continue;
          rows.push({ link: link.name, client: name, moves: 0, draw: 0, frames: 0, kbps: 0, lagMs: 0, note: open });
          continue;
        }
        await noClient();
        shaper?.reset();
        relay.reset();
        tap.reset();
        const c = await open(relay.port);
        try {
          if (!(await settled(tap, 1500, true))) throw new Error(`${name}: no still first picture in 30 s`);
          const size = await screenSize();
          tap.reset();
          if (c.browser) await driver.ask({ cmd: 'start' });
          const started = performance.now();
          const moves = Number(await sh(MOVER, [tty, String(SECONDS)], (SECONDS + 60) * 1000));
          await settled(tap, 1000, false, 30_000);
          const asked = performance.timeOrigin + performance.now();
          const counted = c.browser ? await driver.ask({ cmd: 'stop' }) : undefined;
          if (counted) console.log(`    page clock − ours: ${(counted.now! - asked).toFixed(0)} ms (≥ 0 expected, ` +
            `the page answers after we ask); ${counted.paintedAt!.length} painted`);
          // The window: from the first drawing message after the loop was started, SECONDS long (the loop's own
          // start in the guest comes a moment after the request: the guest agent, runuser, bash).
          const screen = tap.onScreen();
          const t0 = screen.find((m) => m.at >= started)?.at ?? started;
          const t1 = t0 + SECONDS * 1000;
          const inWindow = <T extends { at: number }>(xs: T[]) => xs.filter((m) => m.at >= t0 && m.at <= t1);
          const kb = inWindow(tap.chunks).reduce((sum, m) => sum + m.bytes, 0) / 1024;
          // The page's times are ms since the epoch, ours since this process began.
          const painted = counted?.paintedAt!.map((at) => at - performance.timeOrigin);
          const row: Row = {
            link: link.name, client: name, moves: moves / SECONDS, draw: inWindow(screen).length / SECONDS,
            frames: frames(screen, t0, t1) / SECONDS, kbps: kb / SECONDS,
            lagMs: Math.max(0, tap.lastDrawnAt - t1),
            painted: painted && painted.filter((at) => at >= t0 && at <= t1).length / SECONDS,
            readMs: counted && counted.checkMs! / Math.max(1, counted.frames!),
            note: size !== size0 ? `guest screen ${size}` : '',
          };
          rows.push(row);
          const late = screen.filter((m) => m.at > t1);
          const latePainted = painted?.filter((at) => at > t1) ?? [];
          console.log(`    after the ${SECONDS} s: ${late.length} drawing messages until +${
            ((late.at(-1)?.at ?? t1) - t1).toFixed(0)} ms, ${latePainted.length} frames painted until +${
            ((latePainted.at(-1) ?? t1) - t1).toFixed(0)} ms; first drawing message ${(t0 - started).toFixed(0)} ms ` +
            `after the loop was asked for; ${inWindow(tap.drawn).length - inWindow(screen).length} drawing messages ` +
            'off the screen (pixmaps) in the window');
          const union = (ms: typeof screen) => ms.reduce((u, m) => m.box ? [Math.min(u[0], m.box[0]),
            Math.min(u[1], m.box[1]), Math.max(u[2], m.box[2]), Math.max(u[3], m.box[3])] : u, [1e9, 1e9, -1e9, -1e9]);
          console.log(`    boxes (top, left, bottom, right): in the window ${union(inWindow(screen))}, after ${union(late)}`);
          const per = (xs: number[]) => Array.from({ length: Math.ceil((SECONDS + 3) * 2) }, (_, i) =>
            xs.filter((at) => at >= t0 + i * 500 && at < t0 + (i + 1) * 500).length).join(' ');
          console.log(`    per 0.5 s from the first: drawn ${per(screen.map((m) => m.at))}` +
            (painted ? `\n                              painted ${per(painted)}` : ''));
          const types = [...tap.types].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}×${v}`).join(' ');
          console.log(`  ${link.name} ${name}: ${JSON.stringify(row)}\n    display messages by type: ${types}` +
            `  load ${load()}`);
        } finally {
          await c.close();
        }
        await sleep(link.rttMs + 1000);
      }
    } finally {
      await relay.close();
      await shaper?.close();
    }
  }
  writeFileSync(paths.spicePort, portFile, { mode: 0o600 });
  const f = (x: number | undefined, d = 1) => (x === undefined ? '–' : x.toFixed(d));
  console.log(`\nA moving window (xterm moved every ${MOVE_MS} ms for ${SECONDS} s) on the ${size0} desktop (qxl), ` +
    `${RUNS === 1 ? 'one run' : `median of ${RUNS} runs`} per client and link; ` +
    `rates per second over the ${SECONDS} s, from the relay in front of QEMU; frames = 1/60 s slots with ` +
    `a drawing message; load ${load()}`);
  console.log('| link | client | guest moves/s | draw msgs/s | frames/s | display KB/s | lag ms | painted fps | note |');
  console.log('|---|---|--:|--:|--:|--:|--:|--:|---|');
  const median = (xs: number[]) => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[v.length >> 1]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  };
  const spread = (xs: number[]) => (xs.length > 1 ? ` (${f(Math.min(...xs))}–${f(Math.max(...xs))})` : '');
  for (const key of new Set(rows.map((r) => `${r.link}|${r.client}`))) {
    const rs = rows.filter((r) => `${r.link}|${r.client}` === key);
    const [r] = rs as [Row];
    const m = (k: 'moves' | 'draw' | 'frames' | 'kbps' | 'lagMs') => median(rs.map((x) => x[k]));
    const painted = rs.flatMap((x) => (x.painted === undefined ? [] : [x.painted]));
    const readMs = rs.flatMap((x) => (x.readMs === undefined ? [] : [x.readMs]));
    const notes = [...new Set(rs.map((x) => x.note).filter(Boolean)),
      readMs.length ? `reading the canvas took ${median(readMs).toFixed(1)} ms a frame` : ''].filter(Boolean).join('; ');
    console.log(r.moves || !r.note ? `| ${r.link} | ${r.client} | ${f(m('moves'))} | ${f(m('draw'))} | ` +
      `${f(m('frames'))}${spread(rs.map((x) => x.frames))} | ${f(m('kbps'), 0)} | ${f(m('lagMs'), 0)} | ` +
      `${painted.length ? f(median(painted)) + spread(painted) : '–'} | ${notes} |`
      : `| ${r.link} | ${r.client} | – | – | – | – | – | – | ${r.note} |`);
  }
} finally {
  driver.close();
  await t.destroy();
  rmSync(dir, { recursive: true, force: true });
}
