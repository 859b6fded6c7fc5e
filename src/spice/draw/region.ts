// Where a drawing command may change pixels: its box, intersected with the surface and with the
// clip rectangles (spice.proto DisplayBase). Operations compute new pixels for the bounding
// rectangle of that region from a copy of the destination, then only the clip pieces are written
// back. Clip rectangles from spice-server are disjoint (a pixman region), but overlapping ones
// would still be right: every piece receives values computed from the original destination, so an
// XOR or a blend is never applied twice.
import type { RgbaImage } from '../codecs/types.ts';
import { intersect, type Rect, type Surface } from '../surface.ts';
import { finish, imageOf, wordsOf, type PixelFormat } from './pixel.ts';

export interface DrawArea {
  /** Bounding rectangle of the drawable pixels (inside the box and the surface). */
  rect: Rect;
  /** Pieces to write back, inside `rect`; null = all of `rect`. */
  pieces: Rect[] | null;
}

export function rectWidth(r: Rect): number {
  return r.right - r.left;
}

export function rectHeight(r: Rect): number {
  return r.bottom - r.top;
}

/** box ∩ surface ∩ ⋃clip; null when nothing can be drawn. */
export function drawArea(box: Rect, clip: Rect[] | null, width: number, height: number): DrawArea | null {
  const inBox = intersect(box, { left: 0, top: 0, right: width, bottom: height });
  if (!inBox) return null;
  if (!clip) return { rect: inBox, pieces: null };
  const pieces: Rect[] = [];
  let bound: Rect | null = null;
  for (const c of clip) {
    const p = intersect(inBox, c);
    if (!p) continue;
    pieces.push(p);
    bound = bound
      ? {
          left: Math.min(bound.left, p.left),
          top: Math.min(bound.top, p.top),
          right: Math.max(bound.right, p.right),
          bottom: Math.max(bound.bottom, p.bottom),
        }
      : { ...p };
  }
  if (!bound) return null;
  const whole =
    pieces.length === 1 &&
    pieces[0]!.left === bound.left &&
    pieces[0]!.top === bound.top &&
    pieces[0]!.right === bound.right &&
    pieces[0]!.bottom === bound.bottom;
  return { rect: bound, pieces: whole ? null : pieces };
}

/** Rect `r` shifted by (dx, dy). */
export function offsetRect(r: Rect, dx: number, dy: number): Rect {
  return { left: r.left + dx, top: r.top + dy, right: r.right + dx, bottom: r.bottom + dy };
}

/** The area restricted to `r` (e.g. where a source exists); null if nothing is left. */
export function restrictArea(area: DrawArea, r: Rect): DrawArea | null {
  const rect = intersect(area.rect, r);
  if (!rect) return null;
  if (!area.pieces) return { rect, pieces: null };
  const pieces = area.pieces.map((p) => intersect(p, r)).filter((p): p is Rect => p !== null);
  return pieces.length ? { rect, pieces } : null;
}

/** A copy of the destination pixels of `area.rect`, as words, to compute new values into. */
export function readArea(surface: Surface, area: DrawArea): { img: RgbaImage; words: Uint32Array } {
  const img = surface.getImage(area.rect);
  return { img, words: wordsOf(img) };
}

/** Writes the computed pixels of `area.rect` back, piece by piece, after fitting them to the surface format. */
export function writeArea(surface: Surface, area: DrawArea, words: Uint32Array, fmt: PixelFormat): void {
  finish(words, fmt);
  const img = imageOf(words, rectWidth(area.rect), rectHeight(area.rect));
  for (const p of area.pieces ?? [area.rect]) surface.putImage(img, p.left - area.rect.left, p.top - area.rect.top, p);
}

/** Read, compute in place, write back. */
export function updateArea(
  surface: Surface,
  area: DrawArea,
  fmt: PixelFormat,
  compute: (words: Uint32Array) => void,
): void {
  const { words } = readArea(surface, area);
  compute(words);
  writeArea(surface, area, words, fmt);
}
