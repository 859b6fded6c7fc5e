// The SPICE agent against the real spice-vdagent in Oriel's desktop guest (Debian, Xorg on qxl, openbox), through
// Oriel's console proxy as the headless client uses it: clipboard both ways (text and PNG), files into the guest
// (three, one of 64 MiB) with identical sha256, cancel, the guest's resolution following the client, and two
// monitors (the VM's qxl-vga has two outputs) asked for by `oriel console resize`, each one's screenshot pixel-exact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PNG } from 'pngjs';
import { nodeFileSource, openSpiceSession } from '../../../src/spice-node/index.ts';
import {
  ChannelType,
  ClipboardType,
  FileTransferError,
  MouseMode,
  Selection,
  nextEvent,
  type DisplayChannel,
  type SpiceSession,
} from '../../../src/spice/index.ts';
import { startDesktopVm, type DesktopVm } from '../../helpers/desktop.ts';
import { killVmsIn, startTestServer, type TestServer } from '../../helpers/server.ts';
import { parsePpm, type Ppm } from '../helpers/qemu.ts';

let ts: TestServer;
let session: SpiceSession;
let dir: string;
let vm: DesktopVm;
const VM = 'desk';

/** Runs a shell command in the guest as the desktop user, in its X session. */
async function sh(cmd: string, timeoutMs = 60_000): Promise<string> {
  const r = await vm.execAsUser(['sh', '-c', cmd], { timeoutMs });
  if (r.exitCode !== 0) throw new Error(`guest: ${cmd} → ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  ts = await startTestServer();
  dir = mkdtempSync(join(tmpdir(), 'oagent-'));
  vm = await startDesktopVm(ts, VM);
  session = await openSpiceSession({
    url: `${ts.url.replace('http', 'ws')}/api/vms/${VM}/spice`,
    headers: { authorization: `Bearer ${ts.adminToken}` },
  });
  await session.agent.whenReady(60_000);
});

after(async () => {
  session?.close();
  if (ts) {
    await killVmsIn(ts.config.dataDir);
    await ts.destroy();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the agent connects: capabilities exchanged, absolute mouse offered', async () => {
  assert.equal(session.agent.state, 'ready');
  assert.ok(session.agent.caps.size > 5, `agent caps: ${[...session.agent.caps]}`);
  for (let i = 0; i < 50 && !((session.main.mouseMode?.supported ?? 0) & MouseMode.CLIENT); i++) await sleep(100);
  assert.ok((session.main.mouseMode!.supported & MouseMode.CLIENT) !== 0, 'client mouse mode offered with the agent');
});

test('text copied in the guest arrives on the client', async () => {
  const text = `copied in the guest ${randomBytes(4).toString('hex')} — ünïcödé ✓`;
  const grabbed = nextEvent(
    session.agent.clipboard.onGuestGrab,
    (g) => g.selection === Selection.CLIPBOARD && g.types.includes(ClipboardType.UTF8_TEXT),
  );
  // xclip stays to serve the selection and keeps its pipes: send its output nowhere (guest-exec waits for them).
  await sh(`printf '%s' '${text}' | xclip -selection clipboard -i >/dev/null 2>&1`);
  await grabbed;
  assert.equal(await session.agent.clipboard.readText(), text);
});

test('text set on the client is what xclip -o returns in the guest', async () => {
  const text = `from the client ${randomBytes(4).toString('hex')}\nsecond line — ç'est ça`;
  await session.agent.clipboard.set({ text });
  assert.equal(await sh('xclip -selection clipboard -o'), text);
  // And on PRIMARY, the X11 selection that the middle button pastes.
  await session.agent.clipboard.set({ text: 'primary text' }, Selection.PRIMARY);
  assert.equal(await sh('xclip -selection primary -o'), 'primary text');
});

test('a PNG picture round-trips unchanged, client → guest → client', async () => {
  const png = new PNG({ width: 97, height: 61 });
  randomBytes(png.data.length).copy(png.data);
  for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
  const bytes = PNG.sync.write(png);
  await session.agent.clipboard.set({ png: new Uint8Array(bytes) });
  const inGuest = Buffer.from(await sh('xclip -selection clipboard -t image/png -o | base64 -w0'), 'base64');
  assertSamePixels(inGuest, png);
  // Back: the guest copies the picture it received.
  await sh(`printf '%s' '${inGuest.toString('base64')}' | base64 -d > /tmp/back.png`);
  const grabbed = nextEvent(session.agent.clipboard.onGuestGrab, (g) => g.types.includes(ClipboardType.PNG));
  await sh('xclip -selection clipboard -t image/png -i /tmp/back.png >/dev/null 2>&1');
  await grabbed;
  const back = await session.agent.clipboard.readPng();
  assert.ok(back, 'the guest offers a PNG');
  assertSamePixels(Buffer.from(back), png);
});

/** The large file: big enough to stream for seconds through the agent's tokens (the 200 MiB drop is web/agent's, by
 * the faster shared-folder channel; bench/file-drop.ts times the agent path at 200 MiB). */
const BIG = 64 << 20;

test('three files, one of 64 MiB, arrive in the guest with identical sha256; progress is reported', async () => {
  const files = [
    { name: 'notes.txt', data: Buffer.from('three files dropped on the console\n') },
    { name: 'random-1m.bin', data: randomBytes(1 << 20) },
  ];
  const big = join(dir, 'big-64m.bin');
  const bigHash = await writeRandomFile(big, BIG);
  for (const f of files) writeFileSync(join(dir, f.name), f.data);
  const expected = new Map([
    ...files.map((f) => [f.name, createHash('sha256').update(f.data).digest('hex')] as const),
    ['big-64m.bin', bigHash],
  ]);
  const progress = new Map<string, number[]>();
  const t0 = Date.now();
  for (const name of [...files.map((f) => f.name), 'big-64m.bin']) {
    const src = await nodeFileSource(join(dir, name));
    try {
      await session.agent.files.send(src, {
        onProgress: (p) => progress.set(p.name, [...(progress.get(p.name) ?? []), p.sent]),
      });
    } finally {
      await src.close();
    }
  }
  const secs = (Date.now() - t0) / 1000;
  const sums = await sh(`cd /home/user/Downloads && sha256sum ${[...expected.keys()].join(' ')}`, 120_000);
  for (const [name, hash] of expected)
    assert.match(sums, new RegExp(`^${hash}  ${name.replace('.', '\\.')}$`, 'm'), `${name} in the guest`);
  const bigProgress = progress.get('big-64m.bin')!;
  assert.ok(bigProgress.length > 100, `progress events for the big file: ${bigProgress.length}`);
  assert.equal(bigProgress.at(-1), BIG);
  assert.ok(bigProgress.every((v, i) => i === 0 || v >= bigProgress[i - 1]!), 'progress only grows');
  console.log(`# 3 files, ${(BIG + (1 << 20)) / 2 ** 20} MiB, in ${secs.toFixed(1)} s`);
  await sh('rm -f /home/user/Downloads/*');
});

test('cancel stops a transfer and the guest removes the partial file', async () => {
  const src = await nodeFileSource(join(dir, 'big-64m.bin'));
  const ac = new AbortController();
  let seen = 0;
  try {
    await assert.rejects(
      session.agent.files.send(src, {
        signal: ac.signal,
        onProgress: (p) => {
          seen = p.sent;
          if (p.sent > 4 << 20) ac.abort();
        },
      }),
      (e: unknown) => e instanceof FileTransferError && e.code === 'cancelled',
    );
  } finally {
    await src.close();
  }
  assert.ok(seen > 4 << 20 && seen < BIG, `cancelled midway (${seen} bytes)`);
  // The agent deletes what it wrote once it reads the CANCELLED status.
  let left = '';
  for (let i = 0; i < 50; i++) {
    left = await sh('ls -A /home/user/Downloads');
    if (!left.trim()) break;
    await sleep(200);
  }
  assert.equal(left.trim(), '', 'no partial file left in the guest');
  // The agent still takes the next transfer.
  writeFileSync(join(dir, 'after.txt'), 'after a cancel\n');
  const after = await nodeFileSource(join(dir, 'after.txt'));
  await session.agent.files.send(after).finally(() => after.close());
  assert.equal(await sh('cat /home/user/Downloads/after.txt'), 'after a cancel\n');
});

test('the guest resolution follows the client (monitors config), read back with xrandr', async () => {
  const display = await session.whenChannel<DisplayChannel>(ChannelType.DISPLAY);
  for (const [w, h] of [[1024, 700], [800, 600]] as const) {
    const created = nextEvent(display.onSurfaceCreated, (i) => i.primary && i.width === w && i.height === h);
    session.agent.resize(w, h);
    await Promise.race([
      created,
      sleep(60_000).then(() =>
        assert.fail(
          `no ${w}x${h} surface within 60 s (now ${display.primary?.info.width}x${display.primary?.info.height})`,
        ),
      ),
    ]);
    const xr = await sh('xrandr --current');
    assert.match(xr, new RegExp(`current ${w} x ${h}`), xr);
  }
});

test('two monitors side by side: xrandr shows both, `console screenshot --display N` is each head exactly', async () => {
  // The command's console sessions take the VM's console over from this file's session (the last to use it).
  const env = { ...process.env, ORIEL_URL: ts.url, ORIEL_TOKEN: ts.adminToken, XDG_CONFIG_HOME: dir };
  // Not spawnSync: the server the command talks to runs in this process.
  const run = (args: string[]) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, [join(import.meta.dirname, '../../../bin/oriel.js'), ...args], { env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  const oriel = async (...args: string[]) => {
    const r = await run(args);
    assert.equal(r.code, 0, `oriel ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const t0 = Date.now();
  assert.match(await oriel('console', 'resize', VM, '1024x700,800x600', '--timeout', '60'),
    /^displays: 1024×700 at 0,0; 800×600 at 1024,0$/m);
  console.log(`# two monitors shown in ${Date.now() - t0} ms`);
  const xr = await sh('xrandr --current');
  assert.match(xr, /^Virtual-1 connected primary 1024x700\+0\+0/m, xr);
  assert.match(xr, /^Virtual-2 connected 800x600\+1024\+0/m, xr);
  const heads = [[0, 0, 1024, 700], [1024, 0, 800, 600]] as const;
  // Each head's screenshot against its region of QMP's screendump of the whole surface (a few tries: the two are
  // taken moments apart, and the guest may still be redrawing after the switch).
  for (const [n, [x, y, w, h]] of heads.entries()) {
    const shot = join(dir, `head${n}.png`);
    let diff = -1;
    for (let i = 0; i < 5 && diff !== 0; i++) {
      assert.match(await oriel('console', 'screenshot', VM, shot, '--display', String(n)),
        new RegExp(`\\(${w}×${h}, display ${n} at ${x},${y}\\)`));
      const dump = join(dir, 'whole.ppm');
      await ts.server.ctx.vms.qmp(VM).execute('screendump', { filename: dump, format: 'ppm' });
      const whole = parsePpm(readFileSync(dump));
      assert.equal(`${whole.width}x${whole.height}`, '1824x700', 'one surface holds both heads');
      diff = differingRegion(PNG.sync.read(readFileSync(shot)), whole, x, y);
    }
    assert.equal(diff, 0, `display ${n}: pixels differing from the screendump's region`);
  }
  const r = await run(['console', 'screenshot', VM, join(dir, 'x.png'), '--display', '2']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no display 2: the guest shows display 0, 1/);
  // Back to one display as large as the two heads' surface: the guest may keep its surface and only drop a head.
  assert.match(await oriel('console', 'resize', VM, '1824x700', '--timeout', '60'), /1824×700/);
  assert.match(await sh('xrandr --current'), /^Virtual-1 connected primary 1824x700\+0\+0/m);
  assert.doesNotMatch(await sh('xrandr --current'), /^Virtual-2 connected \d/m);
});

/** Pixels of `png` that differ from the region of `ppm` at x,y of png's size. */
function differingRegion(png: PNG, ppm: Ppm, x0: number, y0: number): number {
  let n = 0;
  for (let y = 0; y < png.height; y++) {
    for (let x = 0; x < png.width; x++) {
      const i = ((y0 + y) * ppm.width + x0 + x) * 3;
      const j = (y * png.width + x) * 4;
      if (ppm.rgb[i] !== png.data[j] || ppm.rgb[i + 1] !== png.data[j + 1] || ppm.rgb[i + 2] !== png.data[j + 2]) n++;
    }
  }
  return n;
}

function assertSamePixels(pngBytes: Buffer, want: PNG): void {
  const got = PNG.sync.read(pngBytes);
  assert.equal(`${got.width}x${got.height}`, `${want.width}x${want.height}`);
  assert.ok(Buffer.compare(got.data, want.data) === 0, 'pixels identical');
}

async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  for (let left = size; left > 0; ) {
    const b = randomBytes(Math.min(left, 4 << 20));
    hash.update(b);
    if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
    left -= b.length;
  }
  await new Promise<void>((resolve, reject) => {
    out.once('error', reject);
    out.end(() => resolve());
  });
  return hash.digest('hex');
}
