// LZ4 (linked blocks) and ZLIB_GLZ_RGB (zlib around GLZ): hand-made streams with known pixels, then
// fast-check fuzzing — every malformed input ends in SpiceDecodeError, never another exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { be32, typed } from './helpers/fuzz.ts';
import { GlzWindow } from '../../src/spice/codecs/glz.ts';
import * as lz4 from '../../src/spice/codecs/lz4.ts';
import * as zlibGlz from '../../src/spice/codecs/zlib-glz.ts';
import { BitmapFmt } from '../../src/spice/proto/constants.ts';

const MAX = 1 << 16;

function block(bytes: number[]): number[] {
  return [...be32(bytes.length), ...bytes];
}

test('LZ4: literals, an overlapping match, and a match into the previous block (linked blocks)', () => {
  // 4×2 32BIT, top-down. Block 1 = row 0: 4 literal bytes (one pixel B,G,R,X = 1,2,3,0), an 8-byte
  // match at offset 4 (overlapping: repetition), 4 literal bytes (a block ends with literals).
  // Block 2 = row 1: a 12-byte match at offset 16, i.e. into block 1's output, then 4 literals.
  const b1 = [0x44, 1, 2, 3, 0, 4, 0, 0x40, 1, 2, 3, 0];
  const b2 = [0x08, 16, 0, 0x40, 9, 8, 7, 0];
  const endsWithMatch = [0x0c, 16, 0];
  const src = Uint8Array.from([1, BitmapFmt['32BIT'], ...block(b1), ...block(b2)]);
  const img = lz4.decode(src, 4, 2, MAX);
  const px = (i: number) => [...img.data.subarray(i * 4, i * 4 + 4)];
  for (let i = 0; i < 7; i++) assert.deepEqual(px(i), [3, 2, 1, 255], `pixel ${i}`);
  assert.deepEqual(px(7), [7, 8, 9, 255]);
  assert.throws(
    () => lz4.decode(Uint8Array.from([1, BitmapFmt['32BIT'], ...block(b1), ...block(endsWithMatch)]), 4, 2, MAX),
    /truncated block/,
  );
});

test('LZ4: bottom-up 24BIT and 16BIT layouts', () => {
  const rgb24 = lz4.decode(Uint8Array.from([0, BitmapFmt['24BIT'], ...block([0x60, 1, 2, 3, 4, 5, 6])]), 1, 2, MAX);
  assert.deepEqual([...rgb24.data], [6, 5, 4, 255, 3, 2, 1, 255]);
  const rgb16 = lz4.decode(Uint8Array.from([1, BitmapFmt['16BIT'], ...block([0x20, 0x1f, 0x7c])]), 1, 1, MAX);
  assert.deepEqual([...rgb16.data], [255, 0, 255, 255]);
  assert.throws(
    () => lz4.decode(Uint8Array.from([1, BitmapFmt['8BIT'], ...block([0x10, 0])]), 1, 1, MAX),
    /unsupported bitmap format/,
  );
  assert.throws(
    () => lz4.decode(Uint8Array.from([1, BitmapFmt['32BIT'], ...block([0x40, 1, 2, 3, 4])]), 2, 1, MAX),
    /decoded 4 bytes, expected 8/,
  );
});

test('ZLIB_GLZ_RGB: inflates, then decodes GLZ against the shared window', () => {
  const glz = Uint8Array.from([...be32(0x20205a4c, 0x00010001), 0x18, ...be32(2, 1, 8, 0, 0, 0), 1, 9, 8, 7, 6, 5, 4]);
  const dict = new GlzWindow(MAX);
  const img = zlibGlz.decode(glz.length, new Uint8Array(deflateSync(glz)), dict, MAX);
  assert.deepEqual([...img.data], [7, 8, 9, 255, 4, 5, 6, 255]);
  assert.equal(dict.size, 1);
  assert.throws(
    () => zlibGlz.decode(glz.length + 1, new Uint8Array(deflateSync(glz)), dict, MAX),
    /inflated 40 bytes, header says 41/,
  );
  assert.throws(() => zlibGlz.decode(glz.length, Uint8Array.of(1, 2, 3, 4, 5), dict, MAX), /inflate failed/);
  assert.throws(() => zlibGlz.decode(1 << 30, Uint8Array.of(1), dict, MAX), /exceeds/);
});

test('fuzz LZ4: random blocks for every format', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(6, 7, 8, 9, 5),
      fc.integer({ min: 0, max: 24 }),
      fc.integer({ min: 0, max: 24 }),
      fc.array(fc.uint8Array({ maxLength: 120 }), { maxLength: 4 }),
      fc.boolean(),
      (format, w, h, blocks, lie) => {
      const body = blocks.flatMap((b) => [...be32(lie ? b.length + 3 : b.length), ...b]);
      typed(() => lz4.decode(Uint8Array.from([1, format, ...body]), w, h, MAX));
    },
    ),
    { numRuns: 3000 },
  );
});

test('fuzz ZLIB_GLZ_RGB: corrupted deflate streams and sizes', () => {
  const glz = Uint8Array.from([
    ...be32(0x20205a4c, 0x00010001),
    0x18,
    ...be32(4, 4, 16, 0, 5, 0),
    15,
    ...Array.from({ length: 48 }, (_, i) => i),
  ]);
  const z = new Uint8Array(deflateSync(glz));
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.integer({ min: 0, max: 200 }),
      (flips, size) => {
      const b = z.slice();
      for (const [at, v] of flips) b[at % b.length] = v;
      typed(() => zlibGlz.decode(size, b, new GlzWindow(MAX), MAX));
    },
    ),
    { numRuns: 2000 },
  );
});
