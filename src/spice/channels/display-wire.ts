// Geometry shared by display drawing commands and video streams (spice.proto `struct Rect`,
// `struct Clip`), and nearest-neighbour scaling for sources whose size differs from their box.
import type { RgbaImage } from '../codecs/types.ts';
import { ClipType } from '../proto/constants.ts';
import { SpiceProtocolError } from '../proto/errors.ts';
import type { Reader } from '../proto/reader.ts';
import type { Rect } from '../surface.ts';

/** Rect on the wire is {top, left, bottom, right} i32 (note the order). */
export function readRect(r: Reader): Rect {
  const top = r.i32();
  const left = r.i32();
  const bottom = r.i32();
  const right = r.i32();
  return { left, top, right, bottom };
}

/** Clip {type u8, [num_rects u32, Rect[num_rects]] if RECTS}; null = no clipping. */
export function readClip(r: Reader): Rect[] | null {
  const type = r.u8();
  if (type === ClipType.NONE) return null;
  if (type !== ClipType.RECTS) throw new SpiceProtocolError(`clip type ${type}`);
  const n = r.count(r.u32(), 16);
  return Array.from({ length: n }, () => readRect(r));
}

/** Nearest-neighbour resampling of `src` within `img` to w×h (DRAW_COPY with src_area ≠ box, scaled streams). */
export function scaleNearest(img: RgbaImage, src: Rect, w: number, h: number): RgbaImage {
  const out = new Uint8Array(Math.max(0, w * h * 4));
  const sw = src.right - src.left;
  const sh = src.bottom - src.top;
  for (let y = 0; y < h; y++) {
    const sy = Math.min(img.height - 1, Math.max(0, src.top + Math.floor((y * sh) / h)));
    for (let x = 0; x < w; x++) {
      const sx = Math.min(img.width - 1, Math.max(0, src.left + Math.floor((x * sw) / w)));
      out.set(img.data.subarray((sy * img.width + sx) * 4, (sy * img.width + sx) * 4 + 4), (y * w + x) * 4);
    }
  }
  return { width: w, height: h, data: out };
}
