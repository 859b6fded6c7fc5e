// The client against real QEMU 7.2 (-vga std, SeaBIOS drawing its boot screen): the headless
// framebuffer must equal QMP screendump pixel for pixel in every image-compression mode, with the
// codec the mode implies; passwords, keyboard and mouse are checked end to end. One short-lived
// QEMU at a time, killed by pid (helpers/qemu.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { openSpiceSession, type HeadlessOptions } from '../../src/spice-node/index.ts';
import {
  ChannelType,
  SpiceLinkError,
  type DisplayChannel,
  type InputsChannel,
  type SpiceSession,
} from '../../src/spice/index.ts';
import { waitForMatch } from './helpers/compare.ts';
import { screendump, startQemu, type QemuInstance, type QemuOptions } from './helpers/qemu.ts';

function lit(rgb: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < rgb.length; i += 3) if (rgb[i]! + rgb[i + 1]! + rgb[i + 2]! > 0) n++;
  return n;
}

async function withQemu(opts: QemuOptions, fn: (q: QemuInstance) => Promise<void>): Promise<void> {
  const q = await startQemu(opts);
  try {
    await fn(q);
  } finally {
    await q.stop();
  }
}

function target(q: QemuInstance): HeadlessOptions {
  return q.spicePort ? { host: '127.0.0.1', port: q.spicePort } : { socketPath: q.spiceSocket };
}

/** Connects while the guest is paused, then resumes it so that all drawing arrives as DRAW_COPY. */
async function connectThenRun(
  q: QemuInstance,
  extra: Partial<HeadlessOptions> = {},
): Promise<{ session: SpiceSession; display: DisplayChannel }> {
  const session = await openSpiceSession({ ...target(q), ...extra });
  const errors: string[] = [];
  session.onChannelError((e) => errors.push(`${e.channel}: ${e.error}`));
  const display = await session.whenChannel<DisplayChannel>(ChannelType.DISPLAY);
  await sleep(200);
  await q.qmp.execute('cont');
  await sleep(2500);
  assert.deepEqual(errors, []);
  return { session, display };
}

test('unix socket, image-compression=off: raw bitmaps, framebuffer equals screendump', async () => {
  await withQemu({ imageCompression: 'off', paused: true }, async (q) => {
    const { session, display } = await connectThenRun(q);
    const cmp = await waitForMatch(session, q);
    assert.ok(cmp.equal, `${cmp.differing} pixels differ, ${cmp.detail}`);
    assert.ok(display.displayStats.decoded.bitmap! > 0);
    assert.equal(session.main.init!.displayChannelsHint, 1);
    session.close();
  });
});

// libspice-server compresses DRAW_COPY images only for TCP clients (dcc-send.cpp fill_bits).
const MODES: [mode: string, codec: string, glzWindow?: number][] = [
  ['lz', 'lz_rgb'],
  ['quic', 'quic'],
  ['glz', 'glz_rgb'],
  ['auto_glz', 'glz_rgb'],
  ['auto_glz', 'lz_rgb', 0], // a client announcing no GLZ window gets LZ instead
];

for (const [mode, codec, glzWindow] of MODES) {
  test(`TCP, image-compression=${mode}${glzWindow === 0 ? ', GLZ window 0' : ''}: ${codec} images, pixel-exact`, async () => {
    await withQemu({ imageCompression: mode, paused: true, tcp: true }, async (q) => {
      const { session, display } = await connectThenRun(q, glzWindow === undefined ? {} : { glzWindowSize: glzWindow });
      const cmp = await waitForMatch(session, q);
      assert.ok(cmp.equal, `${cmp.differing} pixels differ, ${cmp.detail}`);
      const decoded = display.displayStats.decoded;
      assert.ok((decoded[codec] ?? 0) >= 10, `decoded ${JSON.stringify(decoded)}`);
      if (codec !== 'glz_rgb') assert.equal(decoded.glz_rgb, undefined);
      if (codec === 'glz_rgb') assert.ok(session.caches.glz.crossImageRefs > 0, 'GLZ referenced earlier images');
      session.close();
    });
  });
}

test('password: a wrong or missing password is PERMISSION_DENIED, the right one connects', async () => {
  await withQemu({ password: 'pa55-word', paused: true }, async (q) => {
    for (const password of ['wrong', undefined]) {
      await assert.rejects(
        openSpiceSession({ ...target(q), password }),
        (e: unknown) => e instanceof SpiceLinkError && e.reason === 'PERMISSION_DENIED' && e.channel === 'main:0',
      );
    }
    const { session } = await connectThenRun(q, { password: 'pa55-word' });
    assert.ok(session.inputs && session.cursor, 'secondary channels linked with the same ticket');
    const cmp = await waitForMatch(session, q);
    assert.ok(cmp.equal, cmp.detail);
    session.close();
  });
});

test('inputs: ESC opens the SeaBIOS boot menu; mouse motion is acknowledged by the server', async () => {
  await withQemu(
    { imageCompression: 'off', paused: true, extraArgs: ['-boot', 'menu=on,splash-time=20000'] },
    async (q) => {
    const { session } = await connectThenRun(q);
    const inputs = await session.whenChannel<InputsChannel>(ChannelType.INPUTS);
    const before = await waitForMatch(session, q);
    assert.ok(before.equal, before.detail);
    // The menu ("Select boot device:", "1. …") lights hundreds of pixels; a cursor blink about 16.
    const litBefore = lit((await screendump(q)).rgb);
    inputs.keyPress(0x01); // ESC, scancode set 1
    let gained = 0;
    for (let i = 0; i < 40 && gained < 300; i++) {
      await sleep(250);
      gained = lit((await screendump(q)).rgb) - litBefore;
    }
    assert.ok(gained >= 300, `the guest drew its boot menu (${gained} more lit pixels)`);
    const after = await waitForMatch(session, q);
    assert.ok(after.equal, `client follows the guest after the key: ${after.detail}`);

    for (let i = 0; i < 8; i++) assert.ok(inputs.mouseMotion(2, 1, 0));
    assert.equal(inputs.mouseMotion(1, 1, 0), false, 'throttled at 8 unacknowledged');
    await sleep(500);
    assert.ok(inputs.mouseMotion(1, 1, 0), 'MOUSE_MOTION_ACK freed the window');
    // The session survived the mouse traffic and still shows what the guest shows.
    const end = await waitForMatch(session, q);
    assert.ok(end.equal, `client still equals screendump after the mouse traffic: ${end.detail}`);
    session.close();
  },
  );
});
