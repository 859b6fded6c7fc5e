// Reference helpers of the drawing-command tests (draw.test.ts, draw-stroke-text.test.ts): the test scene,
// where a command may draw, and the expected picture computed pixel by pixel.
import assert from 'node:assert/strict';
import { DisplayMsg, Ropd } from '../../../src/spice/proto/constants.ts';
import { Body, base, bitmapImage, msg, px, rect, type Pic, type R } from './draw-msgs.ts';
export const W = 16;
export const H = 12;
export type Px = [number, number, number, number];

/** A scene: surface 0 (W×H, xRGB) painted with `pic` by a plain DRAW_COPY. */
export function paint(pic: Pic, surfaceId = 0): Uint8Array {
  const b = base(new Body(), surfaceId, rect(0, 0, pic.width, pic.height))
    .ptr(bitmapImage(pic))
    .rect(rect(0, 0, pic.width, pic.height))
    .u16(Ropd.OP_PUT)
    .u8(1);
  b.u8(0).i32(0).i32(0).u32(0); // no mask
  return msg(DisplayMsg.DRAW_COPY, b);
}

export function get(pic: Pic, x: number, y: number): Px {
  return px(pic, x, y) as Px;
}

export function inside(x: number, y: number, r: R): boolean {
  return x >= r.l && x < r.r && y >= r.t && y < r.b;
}

/** Where a command may draw: box ∩ surface ∩ ⋃clip. */
export function drawable(x: number, y: number, box: R, clip: R[] | null, w = W, h = H): boolean {
  return inside(x, y, box) && x < w && y < h && x >= 0 && y >= 0 && (!clip || clip.some((c) => inside(x, y, c)));
}

/** The expected surface: `f` gives the new pixel where the command draws, null to keep it. xRGB keeps alpha 255. */
export function expectPic(before: Pic, f: (x: number, y: number, d: Px) => Px | null, keepAlpha = false): Pic {
  const out = new Uint8Array(before.rgba);
  for (let y = 0; y < before.height; y++) {
    for (let x = 0; x < before.width; x++) {
      const v = f(x, y, get(before, x, y));
      if (!v) continue;
      out.set([v[0] & 255, v[1] & 255, v[2] & 255, keepAlpha ? v[3] & 255 : 255], (y * before.width + x) * 4);
    }
  }
  return { width: before.width, height: before.height, rgba: out };
}

export function assertPic(
  actual: { width: number; height: number; data: Uint8Array },
  expected: Pic,
  what: string,
): void {
  assert.equal(actual.width, expected.width);
  for (let y = 0; y < expected.height; y++) {
    for (let x = 0; x < expected.width; x++) {
      assert.deepEqual(px(actual, x, y), px(expected, x, y), `${what}: pixel (${x}, ${y})`);
    }
  }
}

export function noMask(b: Body): Body {
  return b.u8(0).i32(0).i32(0).u32(0);
}

/** A DRAW_COPY-shaped message (DRAW_COPY, DRAW_BLEND …) without a mask. */
export function copyMsg(
  type: number,
  box: R,
  src: (b: Body) => void,
  srcArea: R,
  desc: number,
  scale: number,
  clip: R[] | null = null,
): Uint8Array {
  return msg(type, noMask(base(new Body(), 0, box, clip).ptr(src).rect(srcArea).u16(desc).u8(scale)));
}
