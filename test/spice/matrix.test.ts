// Every image-compression mode × both display devices QEMU users pick, against the tiny guest:
// -vga std (bochs-drm: QEMU's ui/spice-display.c turns dirty areas into DRAW_COPY bitmaps) and
// -vga qxl (the guest's qxl KMS driver sends DRAW_COPY with clip rects from guest memory). The guest
// shows a gradient, noise, a photo-like and a text-like picture per mode; after each the client
// framebuffer must equal screendump pixel for pixel, and the codecs the mode implies must have run.
// One guest per device, one session: the mode is switched at run time with the client's
// PREFERRED_COMPRESSION, which overrides `-spice image-compression` for this client (QEMU 7.2 has no
// QMP/HMP command to change image-compression after start).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { openSpiceSession } from '../../src/spice-node/index.ts';
import { ChannelType, ImageCompression, type DisplayChannel } from '../../src/spice/index.ts';
import { waitForMatch } from './helpers/compare.ts';
import { gradient, photo, startTinyGuest, textLike } from './helpers/tiny-guest.ts';

const W = 640;
const H = 480;

/** Mode → codecs that must have decoded something while it was on (photo-like ⇒ QUIC in auto modes). */
const MODES: [name: keyof typeof ImageCompression, codecs: string[]][] = [
  ['OFF', ['bitmap']],
  ['QUIC', ['quic']],
  ['LZ', ['lz_rgb']],
  ['GLZ', ['glz_rgb']],
  ['AUTO_GLZ', ['quic', 'glz_rgb']],
  ['AUTO_LZ', ['quic', 'lz_rgb']],
  ['LZ4', ['lz4']],
];

for (const vga of ['std', 'qxl'] as const) {
  test(`-vga ${vga}: every compression mode pixel-exact on gradient, noise, photo and text`, async (t) => {
    const device = vga === 'std' ? 'VGA' : 'qxl-vga';
    const g = await startTinyGuest({ tcp: true, vga: 'none', extraArgs: ['-device', `${device},xres=${W},yres=${H}`] });
    try {
      assert.deepEqual([g.width, g.height], [W, H]);
      assert.match(await g.run('cat /sys/class/graphics/fb0/name'), vga === 'std' ? /bochs/ : /qxl/);
      await g.upload('gradient', gradient(W, H));
      await g.upload('photo', photo(W, H));
      await g.upload('text', textLike(W, H));
      const session = await openSpiceSession({ host: '127.0.0.1', port: g.q.spicePort });
      const display = await session.whenChannel<DisplayChannel>(ChannelType.DISPLAY);
      await sleep(300);
      const summary: string[] = [];
      for (const [i, [mode, codecs]] of MODES.entries()) {
        assert.ok(display.setPreferredCompression(ImageCompression[mode]));
        const before = { ...display.displayStats.decoded };
        const pictures: [string, string][] = [
          ['gradient', 'cat /tmp/gradient > /dev/fb0'],
          ['noise', `head -c ${W * 4 * (H / 4)} /dev/urandom > /dev/fb0`],
          ['photo', 'cat /tmp/photo > /dev/fb0'],
          ['text', `cat /tmp/text > /dev/fb0; head -c ${W * 4 * (8 + i)} /dev/urandom > /dev/fb0`], // + a band unique to the mode
        ];
        for (const [name, script] of pictures) {
          await g.run(script);
          const cmp = await waitForMatch(session, g.q);
          assert.ok(cmp.equal, `${mode} ${name}: ${cmp.differing} pixels differ, ${cmp.detail}`);
        }
        const delta = Object.fromEntries(
          Object.entries(display.displayStats.decoded)
            .map(([k, v]) => [k, v - (before[k] ?? 0)])
            .filter(([, v]) => (v as number) > 0),
        );
        for (const c of codecs)
          assert.ok((delta[c] ?? 0) > 0, `${mode}: ${c} expected, decoded ${JSON.stringify(delta)}`);
        summary.push(`${mode} ${JSON.stringify(delta)}`);
      }
      t.diagnostic(summary.join('; '));
      session.close();
    } finally {
      await g.stop();
    }
  });
}
