// Recorded QEMU display traffic (test/fixtures/spice/<mode>/, captured by
// helpers/capture-fixtures.ts) replayed through the real display channel must reproduce the
// framebuffer QEMU's screendump showed, pixel for pixel, with the codec the server chose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { RgbaSurface } from '../../src/spice/index.ts';
import { replayDisplay } from './helpers/replay.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/spice');

function load(mode: string): { bytes: Uint8Array; expected: PNG } {
  return {
    bytes: new Uint8Array(readFileSync(join(FIXTURES, mode, 'display.bin'))),
    expected: PNG.sync.read(readFileSync(join(FIXTURES, mode, 'expected.png'))),
  };
}

function assertSurfaceEquals(surface: RgbaSurface, png: PNG): void {
  assert.equal(surface.width, png.width);
  assert.equal(surface.height, png.height);
  let diff = 0;
  for (let i = 0; i < png.data.length; i += 4) {
    if (
      png.data[i] !== surface.data[i] ||
      png.data[i + 1] !== surface.data[i + 1] ||
      png.data[i + 2] !== surface.data[i + 2]
    )
      diff++;
  }
  assert.equal(diff, 0, `${diff} pixels differ`);
}

for (const [mode, codec] of [['lz', 'lz_rgb'], ['quic', 'quic'], ['glz', 'glz_rgb']] as const) {
  test(`replayed ${mode} traffic reproduces the screendump pixel for pixel`, async () => {
    const { bytes, expected } = load(mode);
    for (const chunk of [bytes.length, 4096, 7]) {
      const r = await replayDisplay(bytes, chunk);
      assert.equal(r.error, undefined);
      assert.ok(
        (r.display.displayStats.decoded[codec] ?? 0) > 10,
        `decoded ${JSON.stringify(r.display.displayStats.decoded)}`,
      );
      assertSurfaceEquals(r.display.primary!.surface as RgbaSurface, expected);
    }
  });
}

// The same tiny-guest activity per codec (helpers/capture-guest-fixtures.ts); the last picture is
// lossless everywhere, so even the slow-link capture with JPEG ends pixel-exact.
for (const [mode, codecs] of [
  ['guest-lz', ['lz_rgb']],
  ['guest-glz', ['glz_rgb']],
  ['guest-quic', ['quic']],
  ['guest-lz4', ['lz4']],
  ['guest-jpeg-zlib', ['jpeg', 'zlib_glz_rgb']],
] as const) {
  test(`replayed ${mode} traffic reproduces the screendump pixel for pixel`, async () => {
    const { bytes, expected } = load(mode);
    for (const chunk of [bytes.length, 1000]) {
      const r = await replayDisplay(bytes, chunk);
      assert.equal(r.error, undefined);
      for (const codec of codecs)
        assert.ok(
          (r.display.displayStats.decoded[codec] ?? 0) >= 5,
          `${codec}: decoded ${JSON.stringify(r.display.displayStats.decoded)}`,
        );
      assertSurfaceEquals(r.display.primary!.surface as RgbaSurface, expected);
    }
  });
}

test('replayed MJPEG stream messages (guest-mjpeg) decode every frame', async () => {
  const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'guest-mjpeg', 'display.bin')));
  const meta = JSON.parse(readFileSync(join(FIXTURES, 'guest-mjpeg', 'meta.json'), 'utf8')) as {
    decoded: { mjpeg: number };
  };
  for (const chunk of [bytes.length, 999]) {
    const r = await replayDisplay(bytes, chunk);
    assert.equal(r.error, undefined);
    assert.equal(r.display.displayStats.decoded.mjpeg, meta.decoded.mjpeg);
    assert.ok(r.display.displayStats.streams.created >= 1);
  }
});

test('GLZ replay resolves references into earlier images of the dictionary', async () => {
  const r = await replayDisplay(load('glz').bytes);
  assert.ok(r.caches.glz.crossImageRefs > 0);
});

test('replay answers SET_ACK and PING like a live client', async () => {
  const r = await replayDisplay(load('lz').bytes);
  const types = r.written.map((b) => b[0]! | (b[1]! << 8));
  assert.equal(types[0], 101); // DISPLAY_INIT
  assert.ok(types.includes(1), 'ACK_SYNC'); // answer to SET_ACK
  assert.ok(types.includes(3), 'PONG');
});
