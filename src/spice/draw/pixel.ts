// Pixels as 32-bit words for the drawing operations. Surfaces and images are RGBA bytes
// (codecs/types.ts RgbaImage); the raster operations of spice-common (pixman_utils.c, rop3.c) work
// on whole 32-bit pixels, and bitwise operations do not care about byte order, so the drawing code
// reads the same bytes through a Uint32Array. Colours from the wire (brushes, keys) are packed with
// packRgba so that the byte order of the platform never matters.
import { knownOpacity, markOpaque, type RgbaImage } from '../codecs/types.ts';
import { SurfaceFmt } from '../proto/constants.ts';

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** The word whose bytes in memory are r, g, b, a. */
export function packRgba(r: number, g: number, b: number, a: number): number {
  return LITTLE_ENDIAN
    ? ((a << 24) | (b << 16) | (g << 8) | r) >>> 0
    : ((r << 24) | (g << 16) | (b << 8) | a) >>> 0;
}

/** Byte `i` (0 r, 1 g, 2 b, 3 a) of a word made by packRgba. */
export function channel(word: number, i: number): number {
  return (LITTLE_ENDIAN ? word >>> (8 * i) : word >>> (24 - 8 * i)) & 255;
}

/** A wire colour 0xAARRGGBB (brushes, TRANSPARENT true_color) as a word. */
export function fromArgb(argb: number): number {
  return packRgba((argb >>> 16) & 255, (argb >>> 8) & 255, argb & 255, argb >>> 24);
}

export const ALPHA_BITS = packRgba(0, 0, 0, 255);
export const RGB_BITS = packRgba(255, 255, 255, 0);

/** A Uint32Array over the pixels of `img` (a copy only if its bytes are not 4-byte aligned). */
export function wordsOf(img: RgbaImage): Uint32Array {
  const d = img.data;
  const n = img.width * img.height;
  if (d.byteOffset % 4 === 0) return new Uint32Array(d.buffer, d.byteOffset, n);
  return new Uint32Array(d.slice(0, n * 4).buffer);
}

/** An RgbaImage over `words` (no copy). */
export function imageOf(words: Uint32Array, width: number, height: number): RgbaImage {
  return { width, height, data: new Uint8Array(words.buffer, words.byteOffset, width * height * 4) };
}

/**
 * What a surface format keeps of a pixel. 32_xRGB ignores alpha: it is stored as 255 so that a
 * host can show the surface as is (the web console hands the bytes to an ImageData). 16-bit formats
 * keep 5 (or 6) bits per channel: values are truncated as pixman does when it stores to r5g5b5 /
 * r5g6b5 and widened again by repeating the top bits, as it does when it reads them.
 */
export interface PixelFormat {
  alpha: boolean;
  /** 0 (8 bits a channel), 555 or 565. */
  depth16: 0 | 555 | 565;
}

export function pixelFormat(surfaceFormat: number): PixelFormat {
  switch (surfaceFormat) {
    case SurfaceFmt['32_ARGB']:
    case SurfaceFmt['8_A']:
    case SurfaceFmt['1_A']:
      return { alpha: true, depth16: 0 };
    case SurfaceFmt['16_555']:
      return { alpha: false, depth16: 555 };
    case SurfaceFmt['16_565']:
      return { alpha: false, depth16: 565 };
    default:
      return { alpha: false, depth16: 0 };
  }
}

function widen(v: number, bits: number): number {
  const top = v >> (8 - bits);
  return ((top << (8 - bits)) | (top >> (2 * bits - 8))) & 255;
}

/** Brings every word of `words` to what a surface of format `fmt` can hold (idempotent). */
export function finish(words: Uint32Array, fmt: PixelFormat): void {
  if (fmt.depth16) {
    const gBits = fmt.depth16 === 565 ? 6 : 5;
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      words[i] = packRgba(widen(channel(w, 0), 5), widen(channel(w, 1), gBits), widen(channel(w, 2), 5), 255);
    }
  } else if (!fmt.alpha) {
    for (let i = 0; i < words.length; i++) words[i] = (words[i]! | ALPHA_BITS) >>> 0;
  }
}

/** True when every pixel of `img` has alpha 255 (cached per image: codecs/types.ts markOpaque). */
export function isOpaque(img: RgbaImage): boolean {
  let v = knownOpacity(img);
  if (v === undefined) {
    v = true;
    const d = img.data;
    const n = img.width * img.height;
    if (d.byteOffset % 4 === 0 && d.length >= n * 4) {
      // A pixel at a time as a 32-bit word: a quarter of the loop.
      const words = new Uint32Array(d.buffer, d.byteOffset, n);
      for (let i = 0; i < n; i++) {
        if (((words[i]! & ALPHA_BITS) >>> 0) !== ALPHA_BITS) {
          v = false;
          break;
        }
      }
    } else {
      for (let i = 3; i < n * 4; i += 4) {
        if (d[i] !== 255) {
          v = false;
          break;
        }
      }
    }
    markOpaque(img, v);
  }
  return v;
}

/** pixman's x·a/255 for 8-bit values (pixman-combine32.h MUL_UN8: t = x·a + 0x80, (t + (t >> 8)) >> 8). */
export function mulUn8(x: number, a: number): number {
  const t = x * a + 0x80;
  return (t + (t >> 8)) >> 8;
}

/**
 * A brush colour as the reference reads it for a surface format: 0xAARRGGBB on 32-bit surfaces;
 * on 16-bit ones the value is a native x1r5g5b5 / r5g6b5 pixel (canvas color_shift/color_mask,
 * pixman fills with the 16-bit value), returned here widened to 0xAARRGGBB.
 */
export function brushColor(color: number, fmt: PixelFormat): number {
  if (!fmt.depth16) return color >>> 0;
  const g6 = fmt.depth16 === 565;
  const r = (color >> (g6 ? 11 : 10)) & 31;
  const g = (color >> 5) & (g6 ? 63 : 31);
  const b = color & 31;
  const w5 = (v: number): number => (v << 3) | (v >> 2);
  const gg = g6 ? (g << 2) | (g >> 4) : w5(g);
  return ((0xff << 24) | (w5(r) << 16) | (gg << 8) | w5(b)) >>> 0;
}
