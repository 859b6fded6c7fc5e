// Codecs: hand-made streams with known pixels, then fast-check fuzzing — truncated, corrupted and
// oversized input must end in SpiceDecodeError (a SpiceProtocolError), never another exception, a
// hang, or an allocation sized by the claimed dimensions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { be32, typed } from './helpers/fuzz.ts';
import * as bitmap from '../../src/spice/codecs/bitmap.ts';
import * as glz from '../../src/spice/codecs/glz.ts';
import * as lz from '../../src/spice/codecs/lz.ts';
import * as quic from '../../src/spice/codecs/quic.ts';
import { decodeCursorImage } from '../../src/spice/channels/cursor.ts';
import { BitmapFmt } from '../../src/spice/proto/constants.ts';
import { SpiceDecodeError, SpiceProtocolError } from '../../src/spice/proto/errors.ts';
import { replayDisplay } from './helpers/replay.ts';

const MAX = 1 << 16; // pixel limit used while fuzzing

test('bitmap: 32BIT bottom-up, 24BIT, 16BIT 555 and 8BIT palette', () => {
  const img = bitmap.decode(
    Uint8Array.of(1, 2, 3, 0, 4, 5, 6, 0),
    { format: BitmapFmt['32BIT'], topDown: false, width: 1, height: 2, stride: 4 },
    MAX,
  );
  assert.deepEqual([...img.data], [6, 5, 4, 255, 3, 2, 1, 255]);
  assert.deepEqual(
    [
      ...bitmap.decode(
        Uint8Array.of(1, 2, 3),
        { format: BitmapFmt['24BIT'], topDown: true, width: 1, height: 1, stride: 3 },
        MAX,
      ).data,
    ],
    [3, 2, 1, 255],
  );
  assert.deepEqual(
    [
      ...bitmap.decode(
        Uint8Array.of(0x1f, 0x7c),
        { format: BitmapFmt['16BIT'], topDown: true, width: 1, height: 1, stride: 2 },
        MAX,
      ).data,
    ],
    [255, 0, 255, 255],
  );
  const pal = Uint32Array.of(0x112233, 0xaabbcc);
  assert.deepEqual(
    [
      ...bitmap.decode(
        Uint8Array.of(1, 0),
        { format: BitmapFmt['8BIT'], topDown: true, width: 2, height: 1, stride: 2, palette: pal },
        MAX,
      ).data,
    ],
    [0xaa, 0xbb, 0xcc, 255, 0x11, 0x22, 0x33, 255],
  );
  assert.deepEqual(
    [
      ...bitmap.decode(
        Uint8Array.of(0x40),
        { format: BitmapFmt['1BIT_BE'], topDown: true, width: 2, height: 1, stride: 1, palette: pal },
        MAX,
      ).data,
    ],
    [0x11, 0x22, 0x33, 255, 0xaa, 0xbb, 0xcc, 255],
  );
  assert.throws(
    () =>
      bitmap.decode(
        new Uint8Array(7),
        { format: BitmapFmt['32BIT'], topDown: true, width: 1, height: 2, stride: 4 },
        MAX,
      ),
    SpiceDecodeError,
  );
});

test('LZ: literal pixel then a distance-1 run (RGB32), and a bottom-up image', () => {
  const head = (w: number, h: number, topDown: number) => be32(0x20205a4c, 0x00010001, 8, w, h, w * 4, topDown);
  const img = lz.decode(Uint8Array.from([...head(4, 1, 1), 0, 1, 2, 3, 3 << 5, 0]), { maxPixels: MAX });
  assert.deepEqual([...img.data], [3, 2, 1, 255, 3, 2, 1, 255, 3, 2, 1, 255, 3, 2, 1, 255]);
  const flipped = lz.decode(Uint8Array.from([...head(1, 2, 0), 1, 1, 2, 3, 4, 5, 6]), { maxPixels: MAX });
  assert.deepEqual([...flipped.data], [6, 5, 4, 255, 3, 2, 1, 255]);
  assert.throws(
    () => lz.decode(Uint8Array.from([...head(4, 1, 1), 0, 1, 2, 3, 5 << 5, 7]), { maxPixels: MAX }),
    SpiceDecodeError,
  );
});

test('claimed sizes over the limit are refused before allocation', () => {
  assert.throws(
    () => lz.decode(Uint8Array.from(be32(0x20205a4c, 0x00010001, 8, 100000, 100000, 400000, 1)), { maxPixels: MAX }),
    /exceeds the limit/,
  );
  const q = new Uint8Array(24);
  new DataView(q.buffer).setUint32(0, 0x43495551, true);
  new DataView(q.buffer).setUint32(8, 4, true);
  new DataView(q.buffer).setUint32(12, 100000, true);
  new DataView(q.buffer).setUint32(16, 100000, true);
  assert.throws(() => quic.decode(q, MAX), /exceeds the limit/);
  const g = Uint8Array.from([...be32(0x20205a4c, 0x00010001), 8, ...be32(100000, 100000, 400000, 0, 1, 0)]);
  assert.throws(() => glz.decode(g, new glz.GlzWindow(MAX), MAX), /exceeds the limit/);
  assert.throws(() => decodeCursorImage(0, 60000, 60000, new Uint8Array(0), MAX), /exceeds the limit/);
});

test('GLZ: a reference into an image that is not in the window is a typed error', () => {
  const dict = new glz.GlzWindow(MAX);
  const header = (id: number) => [...be32(0x20205a4c, 0x00010001), 0x18, ...be32(2, 1, 8, 0, id, 0)];
  const first = glz.decode(Uint8Array.from([...header(0), 1, 9, 8, 7, 6, 5, 4]), dict, MAX);
  assert.deepEqual([...first.data], [7, 8, 9, 255, 4, 5, 6, 255]);
  // ctrl: len 2, short offset form; pixel ofs 0; image distance 1 → image 0, pixels 0..1
  const second = glz.decode(Uint8Array.from([...header(1), 2 << 5, 0, 1]), dict, MAX);
  assert.deepEqual([...second.data], [...first.data]);
  assert.throws(() => glz.decode(Uint8Array.from([...header(2), 2 << 5, 0, 5]), dict, MAX), /not in the dictionary/);
});

const lzHeader = fc.record({
  type: fc.integer({ min: 0, max: 12 }),
  w: fc.integer({ min: 0, max: 40 }),
  h: fc.integer({ min: 0, max: 40 }),
  top: fc.integer({ min: 0, max: 1 }),
});

test('fuzz LZ: valid headers with random bodies, and random bytes', () => {
  fc.assert(
    fc.property(
      lzHeader,
      fc.uint8Array({ maxLength: 400 }),
      fc.integer({ min: 0, max: 8 }),
      ({ type, w, h, top }, body, strideDelta) => {
      const stride = type >= 6 ? w * [0, 0, 0, 0, 0, 0, 2, 3, 4, 4, 4, 1][type]! : w + strideDelta;
      const bytes = Uint8Array.from([...be32(0x20205a4c, 0x00010001, type, w, h, stride, top), ...body]);
      typed(() => lz.decode(bytes, { maxPixels: MAX, palette: Uint32Array.of(1, 2, 3) }));
    },
    ),
    { numRuns: 2000 },
  );
  fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (b) => typed(() => lz.decode(b, { maxPixels: MAX }))));
});

test('fuzz QUIC: valid headers with random bodies', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 6 }),
      fc.integer({ min: 0, max: 48 }),
      fc.integer({ min: 0, max: 48 }),
      fc.uint8Array({ maxLength: 600 }),
      (type, w, h, body) => {
      const head = new Uint8Array(20);
      const v = new DataView(head.buffer);
      [0x43495551, 0, type, w, h].forEach((x, i) => v.setUint32(i * 4, x, true));
      typed(() => quic.decode(Uint8Array.from([...head, ...body]), MAX));
    },
    ),
    { numRuns: 2000 },
  );
});

test('fuzz GLZ: valid headers with random bodies against a shared window', () => {
  const dict = new glz.GlzWindow(MAX);
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 12 }),
      fc.integer({ min: 0, max: 32 }),
      fc.integer({ min: 0, max: 32 }),
      fc.integer({ min: 0, max: 20 }),
      fc.uint8Array({ maxLength: 400 }),
      (type, w, h, id, body) => {
      const head = [...be32(0x20205a4c, 0x00010001), type | 0x10, ...be32(w, h, w * 4, 0, id, 3)];
      typed(() => glz.decode(Uint8Array.from([...head, ...body]), dict, MAX));
    },
    ),
    { numRuns: 2000 },
  );
});

test('fuzz bitmap and cursor shapes', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 11 }),
      fc.integer({ min: -1, max: 30 }),
      fc.integer({ min: 0, max: 30 }),
      fc.integer({ min: 0, max: 130 }),
      fc.boolean(),
      fc.uint8Array({ maxLength: 500 }),
      (format, width, height, stride, topDown, data) => {
      typed(() =>
        bitmap.decode(
          data,
          { format, width, height, stride, topDown, palette: format <= 5 ? Uint32Array.of(7) : undefined },
          MAX,
        ),
      );
      typed(() => decodeCursorImage(format % 7, width, height, data, MAX));
    },
    ),
    { numRuns: 2000 },
  );
});

test('fuzz: corrupted and truncated real QEMU traffic (LZ, QUIC, GLZ, LZ4, JPEG + ZLIB_GLZ, MJPEG) replays to a typed error or an image', async () => {
  for (const mode of ['lz', 'quic', 'glz', 'guest-lz4', 'guest-jpeg-zlib', 'guest-mjpeg']) {
    const bytes = new Uint8Array(readFileSync(join(import.meta.dirname, '../fixtures/spice', mode, 'display.bin')));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.nat(),
        async (flips, cut) => {
        const b = bytes.slice(0, bytes.length - (cut % 64));
        for (const [at, v] of flips) b[at % b.length] = v;
        const r = await replayDisplay(b, 1 << 16, 1 << 22);
        if (r.error) assert.ok(r.error instanceof SpiceProtocolError, String(r.error));
      },
      ),
      { numRuns: 60 },
    );
  }
});
