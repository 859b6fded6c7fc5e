// Alpha compositing as pixman computes it for spice-common's canvas, premultiplied 8-bit:
// - OVER (ALPHA_BLEND, glyphs of DRAW_TEXT): s' = s·m/255 per channel when a mask or an overall
//   alpha m applies (UN8x4_MUL_UN8), then d = s' + d·(255 − s'ₐ)/255, saturated (UN8x4_MUL_UN8_ADD_UN8x4),
//   each /255 rounded the pixman way (pixel.ts mulUn8).
// - colour key (TRANSPARENT, pixman_utils.c spice_pixman_blit_colorkey on 32-bit pixels): a source
//   pixel whose RGB equals the key leaves the destination alone; any other replaces it whole.
import { RGB_BITS, channel, finish, fromArgb, mulUn8, packRgba, type PixelFormat } from './pixel.ts';

/** s IN m: every channel of `s` times m/255. */
export function inAlpha(s: number, m: number): number {
  if (m === 255) return s;
  if (m === 0) return 0;
  return packRgba(
    mulUn8(channel(s, 0), m),
    mulUn8(channel(s, 1), m),
    mulUn8(channel(s, 2), m),
    mulUn8(channel(s, 3), m),
  );
}

/** s OVER d (premultiplied). */
export function over(s: number, d: number): number {
  const ia = 255 - channel(s, 3);
  if (ia === 0) return s;
  if (s === 0) return d;
  return packRgba(
    Math.min(255, mulUn8(channel(d, 0), ia) + channel(s, 0)),
    Math.min(255, mulUn8(channel(d, 1), ia) + channel(s, 1)),
    Math.min(255, mulUn8(channel(d, 2), ia) + channel(s, 2)),
    Math.min(255, mulUn8(channel(d, 3), ia) + channel(s, 3)),
  );
}

/**
 * dst[i] = (src[i] IN alpha) OVER dst[i]. Sources without alpha (32BIT bitmaps, xRGB surfaces)
 * carry alpha 255 here, which is how pixman reads x8r8g8b8.
 */
export function blendOver(src: Uint32Array, dst: Uint32Array, alpha: number): void {
  for (let i = 0; i < dst.length; i++) dst[i] = over(inAlpha(src[i]!, alpha), dst[i]!);
}

/**
 * Copies every source pixel whose RGB differs from the key (wire colour 0x??RRGGBB). On a 16-bit
 * surface both are compared as the surface stores them (the reference converts the key and the
 * source to r5g5b5 / r5g6b5 first).
 */
export function colorKey(src: Uint32Array, dst: Uint32Array, keyArgb: number, fmt?: PixelFormat): void {
  const q = new Uint32Array(1);
  const quantize = (w: number): number => {
    if (!fmt?.depth16) return (w & RGB_BITS) >>> 0;
    q[0] = w;
    finish(q, fmt);
    return (q[0]! & RGB_BITS) >>> 0;
  };
  const key = quantize(fromArgb(keyArgb));
  for (let i = 0; i < dst.length; i++) {
    if (quantize(src[i]!) !== key) dst[i] = src[i]!;
  }
}
