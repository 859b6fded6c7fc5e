// JPEG and JPEG_ALPHA: libjpeg-turbo files of every sampling layout (test/fixtures/spice/jpeg-files,
// see its meta.json) must decode to what djpeg makes with the same arithmetic, within ±2; then
// fast-check fuzzing — truncated and corrupted input ends in SpiceDecodeError, never another exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import * as jpeg from '../../src/spice/codecs/jpeg.ts';
import * as jpegAlpha from '../../src/spice/codecs/jpeg-alpha.ts';
import { SpiceDecodeError, SpiceProtocolError } from '../../src/spice/proto/errors.ts';

const DIR = join(import.meta.dirname, '../fixtures/spice/jpeg-files');
const MAX = 1 << 20;

function file(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(DIR, name)));
}

function ppm(name: string): { width: number; height: number; channels: number; data: Uint8Array } {
  const b = file(name);
  const m = new TextDecoder('latin1').decode(b.subarray(0, 20)).match(/^(P[56])\s+(\d+)\s+(\d+)\s+255\s/)!;
  return { width: Number(m[2]), height: Number(m[3]), channels: m[1] === 'P6' ? 3 : 1, data: b.subarray(m[0].length) };
}

function typed(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SpiceProtocolError, `${(e as Error).name}: ${(e as Error).message}`);
  }
}

const LAYOUTS = ['420', '444', '422', 'gray', 'rst', 'opt', 'rgb'];

for (const name of LAYOUTS) {
  test(`JPEG ${name}: equals djpeg (float IDCT, box upsampling) within ±2 (two roundings: IDCT output, colour conversion)`, () => {
    const img = jpeg.decode(file(`${name}.jpg`), { maxPixels: MAX });
    const ref = ppm(`${name}.djpeg.ppm`);
    assert.deepEqual([img.width, img.height], [ref.width, ref.height]);
    let worst = 0;
    for (let i = 0; i < img.width * img.height; i++) {
      for (let c = 0; c < 3; c++)
        worst = Math.max(
          worst,
          Math.abs(img.data[i * 4 + c]! - ref.data[i * ref.channels + (ref.channels === 3 ? c : 0)]!),
        );
      assert.equal(img.data[i * 4 + 3], 255);
    }
    assert.ok(worst <= 2, `largest difference ${worst}`);
  });
}

test('JPEG: progressive and garbage are refused with SpiceDecodeError', () => {
  assert.throws(() => jpeg.decode(file('prog.jpg'), { maxPixels: MAX }), /unsupported SOF 0xc2/);
  assert.throws(() => jpeg.decode(Uint8Array.of(1, 2, 3), { maxPixels: MAX }), SpiceDecodeError);
  assert.throws(() => jpeg.decode(file('420.jpg'), { maxPixels: 100 }), /exceeds the limit/);
});

test('JPEG: tables carried over between frames (MJPEG frames after the first may omit DQT/DHT)', () => {
  const full = file('420.jpg');
  // Drop every DQT (FFDB) and DHT (FFC4) segment.
  const parts: number[] = [0xff, 0xd8];
  for (let p = 2; p < full.length; ) {
    const marker = full[p + 1]!;
    if (marker === 0xda) {
      parts.push(...full.subarray(p));
      break;
    }
    const len = (full[p + 2]! << 8) | full[p + 3]!;
    if (marker !== 0xdb && marker !== 0xc4) parts.push(...full.subarray(p, p + 2 + len));
    p += 2 + len;
  }
  const bare = Uint8Array.from(parts);
  assert.throws(() => jpeg.decode(bare, { maxPixels: MAX }), /undefined (Huffman|quantization) table/);
  const tables = new jpeg.JpegTables();
  const first = jpeg.decode(full, { maxPixels: MAX, tables });
  assert.deepEqual(jpeg.decode(bare, { maxPixels: MAX, tables }).data, first.data);
});

/** An LZ XXXA stream (lz.ts header, big-endian) of literal alpha bytes. */
function lzAlpha(w: number, h: number, topDown: boolean, alpha: (i: number) => number): Uint8Array {
  const words = [0x20205a4c, 0x00010001, 10, w, h, w * 4, topDown ? 1 : 0];
  const out: number[] = words.flatMap((v) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
  for (let i = 0; i < w * h; i += 32) {
    const n = Math.min(32, w * h - i);
    out.push(n - 1);
    for (let k = 0; k < n; k++) out.push(alpha(i + k));
  }
  return Uint8Array.from(out);
}

test('JPEG_ALPHA: colours from the JPEG, alpha from the LZ plane, in either row order', () => {
  const j = file('444.jpg');
  const colour = jpeg.decode(j, { maxPixels: MAX });
  const { width: w, height: h } = colour;
  for (const topDown of [true, false]) {
    // Stream row order: when bottom-up, stream row 0 is the bottom image row.
    const alpha = lzAlpha(w, h, topDown, (i) => (i * 7) & 255);
    const data = new Uint8Array(j.length + alpha.length);
    data.set(j);
    data.set(alpha, j.length);
    const img = jpegAlpha.decode(topDown ? jpegAlpha.JPEG_ALPHA_TOP_DOWN : 0, j.length, data, MAX);
    for (const [x, y] of [[0, 0], [w - 1, 0], [3, h - 1], [w - 1, h - 1]] as const) {
      const streamRow = topDown ? y : h - 1 - y;
      const o = (y * w + x) * 4;
      assert.equal(img.data[o + 3], ((streamRow * w + x) * 7) & 255, `alpha at ${x},${y}`);
      assert.deepEqual(
        [...img.data.subarray(o, o + 3)],
        [...colour.data.subarray((streamRow * w + x) * 4, (streamRow * w + x) * 4 + 3)],
      );
    }
  }
  const bad = new Uint8Array(j.length + 40);
  bad.set(j);
  assert.throws(() => jpegAlpha.decode(0, j.length, bad, MAX), /not an LZ XXXA stream/);
  const mismatch = lzAlpha(w, h, true, () => 9);
  const data = new Uint8Array(j.length + mismatch.length);
  data.set(j);
  data.set(mismatch, j.length);
  assert.throws(() => jpegAlpha.decode(0, j.length, data, MAX), /row orders differ/);
});

test('fuzz JPEG: corrupted, truncated and spliced real files', () => {
  const files = LAYOUTS.map((n) => file(`${n}.jpg`));
  fc.assert(
    fc.property(
      fc.nat(files.length - 1),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      fc.nat(),
      (which, flips, cut) => {
      const src = files[which]!;
      const b = src.slice(0, src.length - (cut % src.length));
      for (const [at, v] of flips) if (b.length) b[at % b.length] = v;
      typed(() => jpeg.decode(b, { maxPixels: 1 << 14 }));
    },
    ),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) =>
      typed(() => jpeg.decode(Uint8Array.from([0xff, 0xd8, ...b]), { maxPixels: 1 << 14 })),
    ),
    { numRuns: 2000 },
  );
});

test('fuzz JPEG_ALPHA: random split points and alpha streams', () => {
  const j = file('420.jpg');
  fc.assert(
    fc.property(fc.nat(), fc.integer({ min: 0, max: 1 }), fc.uint8Array({ maxLength: 200 }), (split, flags, tail) => {
      const data = Uint8Array.from([...j, ...tail]);
      typed(() => jpegAlpha.decode(flags, split % (data.length + 10), data, 1 << 14));
    }),
    { numRuns: 500 },
  );
});

test('IDCT: the AAN factorisation with scaled dequantization equals the textbook formula within rounding', async () => {
  const { idctBlock, scaledQuant } = await import('../../src/spice/codecs/jpeg-idct.ts');
  const zigzag = Uint8Array.from({ length: 64 }, (_, k) => k); // natural order is enough here
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: -1024, max: 1023 }), { minLength: 64, maxLength: 64 }),
      fc.integer({ min: 0, max: 63 }),
      (raw, keep) => {
      // Sparse blocks as well as dense ones (screen content is mostly zeros past the first few).
      const S = raw.map((v, i) => (i <= keep ? v : 0));
      const q = Uint16Array.from({ length: 64 }, (_, i) => 1 + (i % 7));
      const mul = scaledQuant(q, zigzag);
      const coef = Float64Array.from(S, (v, i) => v * mul[i]!);
      const out = new Uint8Array(64);
      idctBlock(coef, out, 0, 8);
      for (let y = 0; y < 8; y++) {
        for (let x = 0; x < 8; x++) {
          let s = 0;
          for (let v = 0; v < 8; v++) {
            for (let u = 0; u < 8; u++) {
              const cu = u ? 1 : Math.SQRT1_2;
              const cv = v ? 1 : Math.SQRT1_2;
              s +=
                cu *
                cv *
                S[v * 8 + u]! *
                q[v * 8 + u]! *
                Math.cos(((2 * x + 1) * u * Math.PI) / 16) *
                Math.cos(((2 * y + 1) * v * Math.PI) / 16);
            }
          }
          const want = Math.max(0, Math.min(255, Math.round(s / 4 + 128)));
          assert.ok(Math.abs(out[y * 8 + x]! - want) <= 1, `(${x}, ${y}): ${out[y * 8 + x]} vs ${want}`);
        }
      }
    },
    ),
    { numRuns: 300 },
  );
});
