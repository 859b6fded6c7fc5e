// Uncompressed SPICE bitmaps (spice.proto `struct BitmapData`, image type BITMAP). Pixel layouts as
// in spice.proto `enum8 bitmap_fmt` and spice-common common/pixman_utils.c spice_bitmap_to_pixman:
// 32BIT = B,G,R,X bytes; RGBA = B,G,R,A; 24BIT = B,G,R; 16BIT = x1r5g5b5 LE; 8BIT, 4BIT_BE/LE, 1BIT_BE/LE =
// palette indices (_BE: high nibble / most significant bit first, _LE: low nibble / least significant
// bit first); 8BIT_A = alpha only (black with that alpha, as pixman reads a8). Rows are bottom-up
// unless TOP_DOWN.
import { BitmapFmt, nameOf } from '../proto/constants.ts';
import { SpiceDecodeError } from '../proto/errors.ts';
import { checkDimensions, type RgbaImage } from './types.ts';

export interface BitmapParams {
  format: number;
  topDown: boolean;
  width: number;
  height: number;
  stride: number;
  /** 0x00RRGGBB entries, required by the palettized formats. */
  palette?: Uint32Array;
}

const BITS_PER_PIXEL: Record<number, number> = {
  [BitmapFmt['1BIT_LE']]: 1,
  [BitmapFmt['1BIT_BE']]: 1,
  [BitmapFmt['4BIT_LE']]: 4,
  [BitmapFmt['4BIT_BE']]: 4,
  [BitmapFmt['8BIT_A']]: 8,
  [BitmapFmt['8BIT']]: 8,
  [BitmapFmt['16BIT']]: 16,
  [BitmapFmt['24BIT']]: 24,
  [BitmapFmt['32BIT']]: 32,
  [BitmapFmt.RGBA]: 32,
};

/** Expands a 5-bit channel to 8 bits by replicating its top bits (as pixman does for x1r5g5b5). */
function expand5(v: number): number {
  return (v << 3) | (v >> 2);
}

export function decode(data: Uint8Array, p: BitmapParams, maxPixels: number): RgbaImage {
  const bpp = BITS_PER_PIXEL[p.format];
  if (bpp === undefined) throw new SpiceDecodeError('bitmap', `unsupported format ${nameOf(BitmapFmt, p.format)}`);
  checkDimensions('bitmap', p.width, p.height, maxPixels);
  if (p.stride * 8 < p.width * bpp)
    throw new SpiceDecodeError('bitmap', `stride ${p.stride} too small for ${p.width} px`);
  if (p.stride * p.height > data.length)
    throw new SpiceDecodeError('bitmap', `${data.length} bytes, need ${p.stride * p.height}`);
  const alphaOnly = p.format === BitmapFmt['8BIT_A'];
  if (bpp <= 8 && !alphaOnly && !p.palette) throw new SpiceDecodeError('bitmap', 'palettized bitmap without palette');

  const { width, height, stride } = p;
  const out = new Uint8Array(width * height * 4);
  const pal = p.palette ?? new Uint32Array(0);
  const put = (o: number, rgb: number, a = 255): void => {
    out[o] = (rgb >>> 16) & 255;
    out[o + 1] = (rgb >>> 8) & 255;
    out[o + 2] = rgb & 255;
    out[o + 3] = a;
  };
  for (let y = 0; y < height; y++) {
    const s = (p.topDown ? y : height - 1 - y) * stride;
    let o = y * width * 4;
    switch (p.format) {
      case BitmapFmt['32BIT']:
      case BitmapFmt.RGBA: {
        const alpha = p.format === BitmapFmt.RGBA;
        for (let x = 0, i = s; x < width; x++, i += 4, o += 4) {
          out[o] = data[i + 2]!;
          out[o + 1] = data[i + 1]!;
          out[o + 2] = data[i]!;
          out[o + 3] = alpha ? data[i + 3]! : 255;
        }
        break;
      }
      case BitmapFmt['24BIT']:
        for (let x = 0, i = s; x < width; x++, i += 3, o += 4) {
          out[o] = data[i + 2]!;
          out[o + 1] = data[i + 1]!;
          out[o + 2] = data[i]!;
          out[o + 3] = 255;
        }
        break;
      case BitmapFmt['16BIT']:
        for (let x = 0, i = s; x < width; x++, i += 2, o += 4) {
          const v = data[i]! | (data[i + 1]! << 8);
          out[o] = expand5((v >> 10) & 31);
          out[o + 1] = expand5((v >> 5) & 31);
          out[o + 2] = expand5(v & 31);
          out[o + 3] = 255;
        }
        break;
      case BitmapFmt['8BIT_A']:
        for (let x = 0; x < width; x++, o += 4) put(o, 0, data[s + x]!);
        break;
      default: {
        // Palettized: an index past the palette's end reads as black rather than failing the frame.
        const lsbFirst = p.format === BitmapFmt['1BIT_LE'] || p.format === BitmapFmt['4BIT_LE'];
        for (let x = 0; x < width; x++, o += 4) {
          const bit = x * bpp;
          const byte = data[s + (bit >> 3)]!;
          const shift = lsbFirst ? bit & 7 : 8 - bpp - (bit & 7);
          const idx = bpp === 8 ? byte : (byte >> shift) & ((1 << bpp) - 1);
          put(o, pal[idx] ?? 0);
        }
      }
    }
  }
  return { width, height, data: out };
}
