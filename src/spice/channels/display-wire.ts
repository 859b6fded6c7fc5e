// Wire structures of the display channel: geometry shared by drawing commands and video streams
// (spice.proto `struct Rect`, `struct Clip`), nearest-neighbour scaling for video frames, and the
// operands of the GDI drawing commands (Brush, QMask, Path, LineAttr, String). Pointers (`Type *`)
// are u32 offsets from the start of the message body; arrays marked @ptr_array in spice.proto are
// still laid out inline on the wire (only the C structures use pointers).
import type { RgbaImage } from '../codecs/types.ts';
import { BrushType, ClipType } from '../proto/constants.ts';
import { SpiceProtocolError } from '../proto/errors.ts';
import type { Reader } from '../proto/reader.ts';
import type { Rect } from '../surface.ts';
import { LineFlags, type PathSegment } from '../draw/stroke.ts';
import { glyphBytes, glyphDepth, type Glyph } from '../draw/text.ts';

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

/** spice.proto `struct Brush` with the pattern image still a pointer (decoded by the caller). */
export type WireBrush =
  | { type: typeof BrushType.NONE }
  | { type: typeof BrushType.SOLID; color: number }
  | { type: typeof BrushType.PATTERN; imagePtr: number; x: number; y: number };

export function readBrush(r: Reader): WireBrush {
  const type = r.u8();
  switch (type) {
    case BrushType.NONE:
      return { type };
    case BrushType.SOLID:
      return { type, color: r.u32() };
    case BrushType.PATTERN: {
      const imagePtr = r.u32();
      if (imagePtr === 0) throw new SpiceProtocolError('pattern brush without an image');
      return { type, imagePtr, x: r.i32(), y: r.i32() };
    }
    default:
      throw new SpiceProtocolError(`brush type ${type}`);
  }
}

/** spice.proto `struct QMask` {flags u8, pos Point, bitmap Image*}; imagePtr 0 = no mask. */
export interface WireMask {
  flags: number;
  x: number;
  y: number;
  imagePtr: number;
}

export function readMask(r: Reader): WireMask {
  return { flags: r.u8(), x: r.i32(), y: r.i32(), imagePtr: r.u32() };
}

/**
 * spice.proto `struct Path` at `ptr`: {num_segments u32, PathSegment {flags u8, count u32, PointFix[count]} …}
 * inline.
 */
export function readPath(body: Reader, ptr: number): PathSegment[] {
  if (ptr === 0) throw new SpiceProtocolError('NULL path');
  const r = body.at(ptr, 'Path');
  const n = r.count(r.u32(), 5);
  const segments: PathSegment[] = [];
  for (let i = 0; i < n; i++) {
    const flags = r.u8();
    const count = r.count(r.u32(), 8);
    const points = new Int32Array(count * 2);
    for (let j = 0; j < count * 2; j++) points[j] = r.i32();
    segments.push({ flags, points });
  }
  return segments;
}

/** spice.proto `struct LineAttr` {flags u8, [style_nseg u8, style fixed28_4* → fixed28_4[style_nseg]] if STYLED}. */
export function readLineAttr(r: Reader, body: Reader): { flags: number; style: Int32Array | null } {
  const flags = r.u8();
  if (!(flags & LineFlags.STYLED)) return { flags, style: null };
  const n = r.u8();
  const ptr = r.u32();
  if (ptr === 0) return { flags, style: null };
  const s = body.at(ptr, 'LineAttr style');
  s.count(n, 4);
  const style = new Int32Array(n);
  for (let i = 0; i < n; i++) style[i] = s.i32();
  return { flags, style };
}

/**
 * spice.proto `struct String` at `ptr`: {length u16, flags u8, RasterGlyph[length] inline}, a
 * glyph being {render_pos Point, glyph_origin Point, width u16, height u16, data[image_size]}.
 * Without a raster flag the string has no glyphs (vector glyphs were never implemented).
 */
export function readString(body: Reader, ptr: number): { flags: number; depth: number; glyphs: Glyph[] } {
  if (ptr === 0) throw new SpiceProtocolError('NULL string');
  const r = body.at(ptr, 'String');
  const length = r.u16();
  const flags = r.u8();
  const depth = glyphDepth(flags);
  if (!depth) return { flags, depth, glyphs: [] };
  r.count(length, 20);
  const glyphs: Glyph[] = [];
  for (let i = 0; i < length; i++) {
    const rx = r.i32();
    const ry = r.i32();
    const ox = r.i32();
    const oy = r.i32();
    const width = r.u16();
    const height = r.u16();
    const data = r.bytesView(glyphBytes(depth, width, height));
    glyphs.push({ left: rx + ox, top: ry + oy, width, height, data });
  }
  return { flags, depth, glyphs };
}
