// Palettized LZ and GLZ (LZ_IMAGE_TYPE PLT1_LE/BE, PLT4_LE/BE, PLT8): hand-made streams with known
// pixels, the palette from the bitmap or from the palette cache through the display channel, and
// fuzzing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as glz from '../../src/spice/codecs/glz.ts';
import * as lz from '../../src/spice/codecs/lz.ts';
import { DisplayMsg, ImageType, Ropd } from '../../src/spice/proto/constants.ts';
import { be32, typed } from './helpers/fuzz.ts';
import { Body, base, msg, play, px, rect, surfaceCreate, surfaceOf } from './helpers/draw-msgs.ts';

const MAX = 1 << 16;
const PAL = Uint32Array.from({ length: 16 }, (_, i) => (i * 0x110000) | (i * 0x1100) | (255 - i * 15));
const rgb = (c: number) => [(c >>> 16) & 255, (c >>> 8) & 255, c & 255, 255];

function lzStream(type: number, w: number, h: number, stride: number, body: number[], topDown = 1): Uint8Array {
  return Uint8Array.from([...be32(0x20205a4c, 0x00010001, type, w, h, stride, topDown), ...body]);
}

test('LZ PLT4_BE / PLT4_LE / PLT8: literal bytes through the palette, rows of `stride` bytes, width cropped', () => {
  // 3×2, stride 2: the last nibble of each row is padding.
  const be = lz.decode(lzStream(4, 3, 2, 2, [3, 0x12, 0x3f, 0x45, 0x6f]), { maxPixels: MAX, palette: PAL });
  assert.deepEqual([...be.data], [1, 2, 3, 4, 5, 6].flatMap((i) => rgb(PAL[i]!)));
  const le = lz.decode(lzStream(3, 3, 2, 2, [3, 0x21, 0xf3, 0x54, 0xf6]), { maxPixels: MAX, palette: PAL });
  assert.deepEqual([...le.data], [1, 2, 3, 4, 5, 6].flatMap((i) => rgb(PAL[i]!)));
  // PLT8 bottom-up: the first row of the stream is the bottom row.
  const p8 = lz.decode(lzStream(5, 2, 2, 2, [3, 7, 8, 9, 10], 0), { maxPixels: MAX, palette: PAL });
  assert.deepEqual([...p8.data], [9, 10, 7, 8].flatMap((i) => rgb(PAL[i]!)));
});

test('LZ PLT1_LE / PLT1_BE: 8 pixels a byte; a back reference copies whole bytes', () => {
  // 24×2, stride 3: three literal bytes, then a reference of length 3 at distance 3 (row 1 = row 0).
  const bytes = [0xa5, 0x0f, 0x80];
  const bits = (v: number, lsb: boolean) => Array.from({ length: 8 }, (_, i) => (v >> (lsb ? i : 7 - i)) & 1);
  for (const [type, lsb] of [[1, true], [2, false]] as const) {
    const img = lz.decode(lzStream(type, 24, 2, 3, [2, ...bytes, 0x20, 0x02]), {
      maxPixels: MAX,
      palette: Uint32Array.of(0x000000, 0xffffff),
    });
    const row = bytes.flatMap((b) => bits(b, lsb)).flatMap((v) => (v ? [255, 255, 255, 255] : [0, 0, 0, 255]));
    assert.deepEqual([...img.data], [...row, ...row], `type ${type}`);
  }
});

function glzHeader(type: number, w: number, h: number, stride: number, id: number): number[] {
  return [...be32(0x20205a4c, 0x00010001), type | 0x10, ...be32(w, h, stride, 0, id, 1)];
}

test('GLZ PLT8 then PLT4_LE: a reference into the previous image copies its colours, times pixels per byte', () => {
  const dict = new glz.GlzWindow(MAX);
  const first = glz.decode(Uint8Array.from([...glzHeader(5, 6, 1, 6, 0), 5, 1, 2, 3, 4, 5, 6]), dict, MAX, PAL);
  assert.deepEqual([...first.data], [1, 2, 3, 4, 5, 6].flatMap((i) => rgb(PAL[i]!)));
  // Image 1, 6×2 PLT4_LE (stride 3): row 0 = a reference (coded length 1 → (1 + 2)·2 = 6 px) into
  // image 0 at offset 0, with another palette; row 1 = three literal bytes, low nibble first.
  const pal2 = Uint32Array.from(PAL, (c) => c ^ 0xffffff);
  const second = glz.decode(
    Uint8Array.from([...glzHeader(3, 6, 2, 3, 1), 0x20, 0x00, 0x01, 2, 0x21, 0x43, 0x65]),
    dict,
    MAX,
    pal2,
  );
  assert.deepEqual([...second.data], [...first.data, ...[1, 2, 3, 4, 5, 6].flatMap((i) => rgb(pal2[i]!))]);
  assert.equal(dict.crossImageRefs, 1);
  assert.throws(
    () => glz.decode(Uint8Array.from([...glzHeader(5, 2, 1, 2, 2), 1, 1, 2]), dict, MAX),
    /without a palette/,
  );
});

test('LZ_PLT through the display channel: palette in the image, cached (PAL_CACHE_ME), then from the cache', async () => {
  const stream = [...lzStream(5, 2, 1, 2, [1, 3, 4])];
  const lzPlt = (flags: number, withPalette: boolean) => (b: Body) => {
    b.u64(0).u8(ImageType.LZ_PLT).u8(0).u32(2).u32(1).u8(flags).u32(stream.length);
    if (withPalette)
      b.ptr((p) =>
        p
          .u64(99)
          .u16(16)
          .bytes([...PAL].flatMap((c) => [c & 255, (c >> 8) & 255, c >>> 16, 0])),
      );
    else b.u64(99);
    b.bytes(stream);
  };
  const copy = (x: number, image: (b: Body) => void) =>
    msg(
      DisplayMsg.DRAW_COPY,
      base(new Body(), 0, rect(x, 0, x + 2, 1))
        .ptr(image)
        .rect(rect(0, 0, 2, 1))
        .u16(Ropd.OP_PUT)
        .u8(1)
        .u8(0)
        .i32(0)
        .i32(0)
        .u32(0),
    );
  const r = await play(surfaceCreate(0, 4, 1), copy(0, lzPlt(1, true)), copy(2, lzPlt(2, false)));
  assert.deepEqual([0, 1, 2, 3].map((x) => px(surfaceOf(r), x, 0)), [3, 4, 3, 4].map((i) => rgb(PAL[i]!)));
  assert.equal(r.display.displayStats.decoded.lz_plt, 2);
  assert.equal(r.caches.palettes.size, 1);
});

test('fuzz palettized LZ and GLZ: valid headers, random bodies, any palette size', () => {
  const dict = new glz.GlzWindow(MAX);
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 0, max: 40 }),
      fc.integer({ min: 0, max: 20 }),
      fc.integer({ min: 0, max: 12 }),
      fc.integer({ min: 0, max: 8 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.integer({ min: 0, max: 20 }),
      (type, w, h, stride, id, body, palSize) => {
      const pal = Uint32Array.from({ length: palSize }, (_, i) => i * 0x010203);
      typed(() => lz.decode(lzStream(type, w, h, stride, [...body]), { maxPixels: MAX, palette: pal }));
      typed(() => glz.decode(Uint8Array.from([...glzHeader(type, w, h, stride, id), ...body]), dict, MAX, pal));
    },
    ),
    { numRuns: 3000 },
  );
});
