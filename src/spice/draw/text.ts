// DRAW_TEXT: raster glyph strings (spice.proto `struct String`, RasterGlyphA1/A4/A8) drawn as
// spice-common's software canvas draws them (sw_canvas.c canvas_draw_text, canvas_base.c
// canvas_get_str_mask / canvas_put_glyph_bits):
// - glyph rows are read bottom-up, whatever RASTER_TOP_DOWN says (the reference leaves that flag
//   as a "todo": honouring it would draw text upside down next to every other client);
// - A1 rows are padded to a byte, most significant bit first, coverage 0 or 255; A4 rows are
//   padded to a byte, high nibble first, and a nibble n becomes n << 4 (so 240 at most, not 255);
//   A8 rows are not padded;
// - overlapping glyphs combine with max (OR for A1);
// - the coverage is the mask of an OVER of the fore brush (solid: opaque colour; pattern: tiled
//   from the top-left corner of the string's bounding box, a quirk of the reference) onto the
//   destination.
import { BrushType } from '../proto/constants.ts';
import type { Rect } from '../surface.ts';
import { inAlpha, over } from './blend.ts';
import { brushSampler, type Brush } from './brush.ts';
import { ALPHA_BITS } from './pixel.ts';

/** spice.proto `flags8 string_flags`. */
export const StringFlags = { RASTER_A1: 1, RASTER_A4: 2, RASTER_A8: 4, RASTER_TOP_DOWN: 8 } as const;

export interface Glyph {
  /** render_pos + glyph_origin: the glyph's top-left pixel. */
  left: number;
  top: number;
  width: number;
  height: number;
  data: Uint8Array;
}

/** Bits per pixel of a string's glyphs (the first raster flag set, as the generated parser switches), 0 if none. */
export function glyphDepth(flags: number): 0 | 1 | 4 | 8 {
  if (flags & StringFlags.RASTER_A1) return 1;
  if (flags & StringFlags.RASTER_A4) return 4;
  if (flags & StringFlags.RASTER_A8) return 8;
  return 0;
}

/** Bytes of one glyph's raster (spice.proto image_size(bpp, width, height)). */
export function glyphBytes(depth: number, width: number, height: number): number {
  return ((width * depth + 7) >> 3) * height;
}

/** Bounding box of all glyphs (empty when there are none). */
export function glyphBounds(glyphs: Glyph[]): Rect | null {
  if (!glyphs.length) return null;
  const r = { left: Infinity, top: Infinity, right: -Infinity, bottom: -Infinity };
  for (const g of glyphs) {
    r.left = Math.min(r.left, g.left);
    r.top = Math.min(r.top, g.top);
    r.right = Math.max(r.right, g.left + g.width);
    r.bottom = Math.max(r.bottom, g.top + g.height);
  }
  return r;
}

/** Coverage (0..255) of the glyphs over `rect`, one byte per pixel. */
export function glyphCoverage(glyphs: Glyph[], depth: number, rect: Rect): Uint8Array {
  const w = rect.right - rect.left;
  const h = rect.bottom - rect.top;
  const cov = new Uint8Array(w * h);
  for (const g of glyphs) {
    const stride = depth === 8 ? g.width : (g.width * depth + 7) >> 3;
    const y0 = Math.max(rect.top, g.top);
    const y1 = Math.min(rect.bottom, g.top + g.height);
    const x0 = Math.max(rect.left, g.left);
    const x1 = Math.min(rect.right, g.left + g.width);
    for (let y = y0; y < y1; y++) {
      const row = (g.height - 1 - (y - g.top)) * stride; // bottom-up
      for (let x = x0; x < x1; x++) {
        const gx = x - g.left;
        let v: number;
        if (depth === 1) v = (g.data[row + (gx >> 3)]! >> (7 - (gx & 7))) & 1 ? 255 : 0;
        else if (depth === 4) v = (gx & 1 ? g.data[row + (gx >> 1)]! << 4 : g.data[row + (gx >> 1)]!) & 0xf0;
        else v = g.data[row + gx]!;
        const o = (y - rect.top) * w + (x - rect.left);
        if (v > cov[o]!) cov[o] = v;
      }
    }
  }
  return cov;
}

/**
 * OVER of the fore brush through `cov` onto `dst` (both over `rect`); `origin` is the string's
 * bounding box corner, the tile origin of a pattern brush.
 */
export function drawGlyphs(
  dst: Uint32Array,
  cov: Uint8Array,
  rect: Rect,
  fore: Brush,
  origin: { x: number; y: number },
): void {
  const w = rect.right - rect.left;
  const brushAt = brushSampler(fore);
  const solid = fore.type === BrushType.PATTERN ? 0 : (brushAt(0, 0) | ALPHA_BITS) >>> 0;
  for (let i = 0; i < dst.length; i++) {
    const m = cov[i]!;
    if (!m) continue;
    const x = rect.left + (i % w);
    const y = rect.top + Math.floor(i / w);
    // A pattern is translated by -pos from the string's corner (pixman transform of the brush image).
    const s = fore.type === BrushType.PATTERN ? brushAt(x - origin.x, y - origin.y) : solid;
    dst[i] = over(inAlpha(s, m), dst[i]!);
  }
}
