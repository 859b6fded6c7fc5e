// encodePng (src/spice-node/png.ts), read back by pngjs: the pixels of an opaque picture (RGBA rows as they are),
// of one whose alpha bytes are not all 255 (RGB, alpha dropped), of an unaligned view, and of a picture with alpha
// (RGBA, alpha kept) come back exactly; a surface's opacity mark (codecs/types.ts) follows what is put on it, and
// the encoder trusts it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { encodePng } from '../../src/spice-node/png.ts';
import { knownOpacity, markOpaque } from '../../src/spice/codecs/types.ts';
import { RgbaSurface } from '../../src/spice/surface.ts';

function picture(w: number, h: number, alpha: (i: number) => number): Uint8Array {
  const d = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    // Flat runs and noise, as on a screen.
    const v = i % 97 < 60 ? 200 : (i * 2654435761) >>> 24;
    d.set([v, (v * 3) & 255, (i >> 3) & 255, alpha(i)], i * 4);
  }
  return d;
}

function readBack(png: Buffer) {
  const p = PNG.sync.read(png);
  return { width: p.width, height: p.height, data: new Uint8Array(p.data), colorType: png[25] };
}

test('an opaque picture: RGBA rows as they are, the same pixels', () => {
  const data = picture(67, 41, () => 255);
  const back = readBack(encodePng({ width: 67, height: 41, data }));
  assert.equal(back.colorType, 6);
  assert.deepEqual([back.width, back.height], [67, 41]);
  assert.deepEqual(back.data, data);
});

test('opaque by contract but some alpha bytes not 255: RGB, alpha read as 255', () => {
  const data = picture(50, 30, (i) => (i === 777 ? 0 : 255));
  const back = readBack(encodePng({ width: 50, height: 30, data }));
  assert.equal(back.colorType, 2);
  const want = data.slice();
  for (let i = 3; i < want.length; i += 4) want[i] = 255;
  assert.deepEqual(back.data, want);
});

test('an unaligned view of an opaque picture, and a picture with alpha', () => {
  const buf = new Uint8Array(1 + 33 * 17 * 4);
  buf.set(picture(33, 17, () => 255), 1);
  const view = buf.subarray(1);
  assert.deepEqual(readBack(encodePng({ width: 33, height: 17, data: view })).data, view);
  const alpha = picture(33, 17, (i) => i & 255);
  const back = readBack(encodePng({ width: 33, height: 17, data: alpha }, false));
  assert.equal(back.colorType, 6);
  assert.deepEqual(back.data, alpha);
});

test('short image data is refused', () => {
  assert.throws(() => encodePng({ width: 10, height: 10, data: new Uint8Array(399) }), /short/);
});

test('an RgbaSurface is known opaque until an image not known opaque is put on it; the encoder trusts the mark', () => {
  const s = new RgbaSurface(8, 4);
  assert.equal(knownOpacity(s), true);
  const opaqueImg = { width: 2, height: 2, data: new Uint8Array(16).fill(255) };
  markOpaque(opaqueImg);
  s.putImage(opaqueImg, 0, 0, { left: 0, top: 0, right: 2, bottom: 2 });
  s.fill({ left: 2, top: 0, right: 8, bottom: 4 }, 0x123456);
  s.copyBits(0, 0, { left: 4, top: 2, right: 6, bottom: 4 });
  assert.equal(knownOpacity(s), true, 'opaque image, fill, copy');
  s.copyBits(6, 2, { left: 0, top: 2, right: 4, bottom: 4 }); // partly from outside: transparent black
  assert.equal(knownOpacity(s), undefined, 'a copy from outside the surface');
  const t = new RgbaSurface(2, 2);
  const px = { width: 1, height: 1, data: Uint8Array.of(1, 2, 3, 255) };
  t.putImage(px, 0, 0, { left: 1, top: 1, right: 2, bottom: 2 });
  assert.equal(knownOpacity(t), undefined, 'an image nobody looked at: unknown');
  // Trusted: a marked picture goes out as RGBA rows as they are, without a look at its alpha.
  const marked = { width: 3, height: 1, data: Uint8Array.of(1, 2, 3, 255, 4, 5, 6, 255, 7, 8, 9, 255) };
  markOpaque(marked);
  assert.equal(readBack(encodePng(marked)).colorType, 6);
  assert.deepEqual(readBack(encodePng(marked)).data, marked.data);
});
