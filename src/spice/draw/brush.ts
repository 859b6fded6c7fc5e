// Brushes (spice.proto `struct Brush`): none, a solid colour 0xAARRGGBB, or a pattern image tiled
// so that its pixel (0, 0) lands on `pos` (pixman_utils.c spice_pixman_tile_rect: tile column
// (x − pos.x) mod width). A NONE brush draws as colour 0, which still matters for rops that use
// the destination (canvas_base.c draw_brush).
import type { RgbaImage } from '../codecs/types.ts';
import { BrushType } from '../proto/constants.ts';
import type { Rect } from '../surface.ts';
import { fromArgb, wordsOf } from './pixel.ts';

export type Brush =
  | { type: typeof BrushType.NONE }
  | { type: typeof BrushType.SOLID; color: number }
  | { type: typeof BrushType.PATTERN; pattern: RgbaImage; x: number; y: number };

function mod(a: number, n: number): number {
  const r = a % n;
  return r < 0 ? r + n : r;
}

/** The brush over `rect` (surface coordinates): one word for a solid brush, or one word per pixel. */
export function brushWords(brush: Brush, rect: Rect): number | Uint32Array {
  if (brush.type === BrushType.NONE) return 0;
  if (brush.type === BrushType.SOLID) return fromArgb(brush.color);
  const w = rect.right - rect.left;
  const h = rect.bottom - rect.top;
  const out = new Uint32Array(w * h);
  const tile = wordsOf(brush.pattern);
  const tw = brush.pattern.width;
  const th = brush.pattern.height;
  for (let y = 0; y < h; y++) {
    const row = mod(rect.top + y - brush.y, th) * tw;
    let tx = mod(rect.left - brush.x, tw);
    for (let x = 0; x < w; x++) {
      out[y * w + x] = tile[row + tx]!;
      if (++tx === tw) tx = 0;
    }
  }
  return out;
}

/** A function giving the brush pixel at (x, y), for drawing pixel by pixel (strokes, glyphs). */
export function brushSampler(brush: Brush): (x: number, y: number) => number {
  if (brush.type !== BrushType.PATTERN) {
    const v = brush.type === BrushType.SOLID ? fromArgb(brush.color) : 0;
    return () => v;
  }
  const tile = wordsOf(brush.pattern);
  const { width: tw, height: th } = brush.pattern;
  return (x, y) => tile[mod(y - brush.y, th) * tw + mod(x - brush.x, tw)]!;
}
