// The SPICE agent against the real spice-vdagent in Oriel's desktop guest (Debian, Xorg on qxl, openbox), through
// Oriel's console proxy as the headless client uses it: clipboard both ways (text and PNG), files into the guest
// (three, one of 200 MiB) with identical sha256, cancel, and the guest's resolution following the client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
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

test('three files, one of 200 MiB, arrive in the guest with identical sha256; progress is reported', async () => {
  const files = [
    { name: 'notes.txt', data: Buffer.from('three files dropped on the console\n') },
    { name: 'random-1m.bin', data: randomBytes(1 << 20) },
  ];
  const big = join(dir, 'big-200m.bin');
  const bigHash = await writeRandomFile(big, 200 << 20);
  for (const f of files) writeFileSync(join(dir, f.name), f.data);
  const expected = new Map([
    ...files.map((f) => [f.name, createHash('sha256').update(f.data).digest('hex')] as const),
    ['big-200m.bin', bigHash],
  ]);
  const progress = new Map<string, number[]>();
  const t0 = Date.now();
  for (const name of [...files.map((f) => f.name), 'big-200m.bin']) {
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
  const bigProgress = progress.get('big-200m.bin')!;
  assert.ok(bigProgress.length > 100, `progress events for the big file: ${bigProgress.length}`);
  assert.equal(bigProgress.at(-1), 200 << 20);
  assert.ok(bigProgress.every((v, i) => i === 0 || v >= bigProgress[i - 1]!), 'progress only grows');
  console.log(`# 3 files, ${((200 << 20) + (1 << 20)) / 2 ** 20} MiB, in ${secs.toFixed(1)} s`);
  await sh('rm -f /home/user/Downloads/*');
});

test('cancel stops a transfer and the guest removes the partial file', async () => {
  const src = await nodeFileSource(join(dir, 'big-200m.bin'));
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
  assert.ok(seen > 4 << 20 && seen < 200 << 20, `cancelled midway (${seen} bytes)`);
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
