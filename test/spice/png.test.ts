// encodePng (src/spice-node/png.ts), read back by pngjs: the pixels of an opaque picture (RGBA rows as they are),
// of one whose alpha bytes are not all 255 (RGB, alpha dropped), of an unaligned view, and of a picture with alpha
// (RGBA, alpha kept) come back exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { encodePng } from '../../src/spice-node/png.ts';

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
