// QMask (spice.proto `struct QMask` {flags, pos, bitmap}): a 1-bit image that limits a drawing
// command to the pixels whose bit is set (or clear, with the INVERS flag). Destination pixel (x, y)
// reads mask pixel (x − box.left + pos.x, y − box.top + pos.y); outside the mask nothing is drawn,
// inverted or not (canvas_base.c canvas_mask_pixman inverts within the mask's extent only).
// Bit order: 1BIT_BE is most significant bit first, 1BIT_LE least significant first; rows are
// bottom-up unless TOP_DOWN (canvas_get_bitmap_mask).
import type { RgbaImage } from '../codecs/types.ts';
import { BitmapFmt } from '../proto/constants.ts';
import { SpiceDecodeError } from '../proto/errors.ts';
import type { Rect } from '../surface.ts';

/** spice.proto `flags8 mask_flags`. */
export const MASK_INVERS = 1;

export interface MaskBits {
  width: number;
  height: number;
  /** One byte per pixel, top-down: 1 = set. */
  bits: Uint8Array;
}

export interface Mask extends MaskBits {
  invert: boolean;
  x: number;
  y: number;
}

export function maskFromBitmap(
  format: number,
  topDown: boolean,
  width: number,
  height: number,
  stride: number,
  data: Uint8Array,
): MaskBits {
  const lsbFirst = format === BitmapFmt['1BIT_LE'];
  if (!lsbFirst && format !== BitmapFmt['1BIT_BE'])
    throw new SpiceDecodeError('mask', `bitmap format ${format} is not 1 bit per pixel`);
  if (stride * 8 < width || stride * height > data.length)
    throw new SpiceDecodeError('mask', `${data.length} bytes for ${width}×${height} at stride ${stride}`);
  const bits = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = (topDown ? y : height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const b = data[row + (x >> 3)]!;
      bits[y * width + x] = (lsbFirst ? b >> (x & 7) : b >> (7 - (x & 7))) & 1;
    }
  }
  return { width, height, bits };
}

/**
 * A mask kept as an image (pixmap cache, SURFACE masks): a pixel is set when its alpha is at least
 * half (images with alpha), or when it is not black (opaque images: masks cached by this client
 * are stored white on black).
 */
export function maskFromImage(img: RgbaImage, useAlpha: boolean): MaskBits {
  const n = img.width * img.height;
  const bits = new Uint8Array(n);
  const d = img.data;
  for (let i = 0; i < n; i++)
    bits[i] = useAlpha ? (d[i * 4 + 3]! >= 128 ? 1 : 0) : d[i * 4]! | d[i * 4 + 1]! | d[i * 4 + 2]! ? 1 : 0;
  return { width: img.width, height: img.height, bits };
}

/** The mask as an image for the pixmap cache (white where set). */
export function maskToImage(m: MaskBits): RgbaImage {
  const data = new Uint8Array(m.width * m.height * 4);
  for (let i = 0; i < m.bits.length; i++) {
    const v = m.bits[i] ? 255 : 0;
    data[i * 4] = data[i * 4 + 1] = data[i * 4 + 2] = v;
    data[i * 4 + 3] = 255;
  }
  return { width: m.width, height: m.height, data };
}

/** Per pixel of `rect`: 1 where the command may draw. */
export function maskKeep(mask: Mask, rect: Rect, box: Rect): Uint8Array {
  const w = rect.right - rect.left;
  const h = rect.bottom - rect.top;
  const keep = new Uint8Array(w * h);
  const dx = mask.x - box.left;
  const dy = mask.y - box.top;
  for (let y = 0; y < h; y++) {
    const my = rect.top + y + dy;
    if (my < 0 || my >= mask.height) continue;
    for (let x = 0; x < w; x++) {
      const mx = rect.left + x + dx;
      if (mx < 0 || mx >= mask.width) continue;
      keep[y * w + x] = mask.bits[my * mask.width + mx]! ^ (mask.invert ? 1 : 0);
    }
  }
  return keep;
}
