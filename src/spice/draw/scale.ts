// Scaled sources (src_area of another size than the box), sampled the way spice-common's software
// canvas has pixman do it, so that the client matches the server's own rendering (QEMU screendump):
//
// - COPY / OPAQUE / BLEND / TRANSPARENT / ALPHA_BLEND (sw_canvas.c __scale_image & co.): a scale
//   transform of fs = (src_len << 16) / dest_len (16.16 fixed, truncated), translated by the source
//   origin; destination pixel j (counted from the box) samples at fs·(j + ½) + (src_start << 16),
//   the ½ rounded as pixman_transform_point does: fs·j + ⌊(fs + 1) / 2⌋.
// - ROP3 (canvas_base.c canvas_scale_surface): fs = trunc(src_len / dest_len · 65536) and the
//   composite starts at source offset round(src_start / (src_len / dest_len)), no translation.
//
// NEAREST takes pixel ⌊(P − 1) / 65536⌋ (pixman_fixed_e). INTERPOLATE is PIXMAN_FILTER_GOOD, which
// pixman implements as bilinear with 7-bit weights: taps at ⌊(P − ½) / 65536⌋ and the next one,
// weight w = ((P − ½) >> 9) & 127, result ⌊Σ tap · wx · wy / 2^14⌋ per channel. Samples outside the
// source read as transparent black (PIXMAN_REPEAT_NONE).
import type { Rect } from '../surface.ts';
import { SpiceProtocolError } from '../proto/errors.ts';
import { channel, packRgba, wordsOf } from './pixel.ts';
import type { PixelSource } from './source.ts';

/** spice.proto `enum8 image_scale_mode`. */
export const ScaleMode = { INTERPOLATE: 0, NEAREST: 1 } as const;

/** Source position of destination index j: fs·(j + base) + ⌊(fs + 1) / 2⌋ + trans (16.16 fixed). */
export interface Axis {
  fs: number;
  base: number;
  trans: number;
}

/** pixman's int32 pixman_fixed_t. */
function toFixed(v: number): number {
  return Math.trunc(v) | 0;
}

export function axisForCopy(srcStart: number, srcLen: number, destLen: number): Axis {
  if (destLen <= 0) throw new SpiceProtocolError(`scaled draw to an empty box (${destLen})`);
  return { fs: toFixed((srcLen * 65536) / destLen), base: 0, trans: srcStart * 65536 };
}

export function axisForRop3(srcStart: number, srcLen: number, destLen: number): Axis {
  if (destLen <= 0 || srcLen <= 0) throw new SpiceProtocolError(`ROP3 scaled from ${srcLen} to ${destLen} px`);
  const ratio = srcLen / destLen;
  return { fs: toFixed(ratio * 65536), base: Math.floor(srcStart / ratio + 0.5), trans: 0 };
}

/** Positions beyond this are far outside any source; they are treated as outside. */
const FAR = 2 ** 46;

function position(a: Axis, j: number): number {
  const p = a.fs * (j + a.base) + Math.floor((a.fs + 1) / 2) + a.trans;
  return Math.abs(p) > FAR ? -FAR : p;
}

/**
 * Samples `src` for destination indices [j0, j0 + w) × [k0, k0 + h) (relative to the box origin)
 * into a w × h word array.
 */
export function sampleScaled(
  src: PixelSource,
  ax: Axis,
  ay: Axis,
  j0: number,
  k0: number,
  w: number,
  h: number,
  mode: number,
): Uint32Array {
  const out = new Uint32Array(w * h);
  const bilinear = mode !== ScaleMode.NEAREST;
  const half = bilinear ? 0x8000 : 1;
  const xs = new Int32Array(w);
  const wx = new Uint8Array(w);
  const ys = new Int32Array(h);
  const wy = new Uint8Array(h);
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let j = 0; j < w; j++) {
    const p = position(ax, j0 + j) - half;
    xs[j] = Math.max(-2, Math.min(src.width + 1, Math.floor(p / 65536)));
    wx[j] = (p >> 9) & 127;
    minX = Math.min(minX, xs[j]!);
    maxX = Math.max(maxX, xs[j]! + (bilinear ? 1 : 0));
  }
  for (let k = 0; k < h; k++) {
    const p = position(ay, k0 + k) - half;
    ys[k] = Math.max(-2, Math.min(src.height + 1, Math.floor(p / 65536)));
    wy[k] = (p >> 9) & 127;
    minY = Math.min(minY, ys[k]!);
    maxY = Math.max(maxY, ys[k]! + (bilinear ? 1 : 0));
  }
  // Read only the part of the source the samples touch (zero outside it).
  const r: Rect = {
    left: Math.max(0, minX),
    top: Math.max(0, minY),
    right: Math.min(src.width, maxX + 1),
    bottom: Math.min(src.height, maxY + 1),
  };
  if (r.left >= r.right || r.top >= r.bottom) return out;
  const img = src.read(r);
  const px = wordsOf(img);
  const rw = r.right - r.left;
  const at = (x: number, y: number): number =>
    x < r.left || x >= r.right || y < r.top || y >= r.bottom ? 0 : px[(y - r.top) * rw + (x - r.left)]!;
  for (let k = 0; k < h; k++) {
    const y = ys[k]!;
    for (let j = 0; j < w; j++) {
      const x = xs[j]!;
      if (!bilinear) {
        out[k * w + j] = at(x, y);
        continue;
      }
      const tl = at(x, y), tr = at(x + 1, y), bl = at(x, y + 1), br = at(x + 1, y + 1);
      const fx = wx[j]!, fy = wy[k]!;
      const c = [0, 0, 0, 0];
      for (let i = 0; i < 4; i++) {
        const top = channel(tl, i) * (128 - fx) + channel(tr, i) * fx;
        const bot = channel(bl, i) * (128 - fx) + channel(br, i) * fx;
        c[i] = (top * (128 - fy) + bot * fy) >> 14;
      }
      out[k * w + j] = packRgba(c[0]!, c[1]!, c[2]!, c[3]!);
    }
  }
  return out;
}
