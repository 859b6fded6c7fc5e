// SPICE LZ (image types LZ_RGB and LZ_PLT), a FastLZ level-2 derivative working on whole pixels.
// Stream layout from spice-common common/lz.c (lz_decode_begin, lz_decode) and
// lz_decompress_tmpl.c; header words are big-endian:
//   magic "LZ  " (0x20205a4c), version 0x00010001, type (LzImageType), width, height, stride, top_down
// followed by the compressed pixels. The back-reference decoding is shared with GLZ (lz-core.ts).
import { SpiceDecodeError } from '../proto/errors.ts';
import { LzType, decodeRun, type Cursor } from './lz-core.ts';
import { checkDimensions, flipRows, markOpaque, type RgbaImage } from './types.ts';

export const LZ_MAGIC = 0x20205a4c;
const LZ_VERSION = 0x00010001;
const HEADER_BYTES = 28;

export interface LzOptions {
  maxPixels: number;
  /** Required for the palettized types (LZ_PLT image payloads), entries 0x00RRGGBB. */
  palette?: Uint32Array;
}

export function readBe32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** Pixels per byte of the palettized types (lz_common.h PLT_PIXELS_PER_BYTE). */
export const PLT_PIXELS_PER_BYTE: Record<number, number> = {
  [LzType.PLT1_LE]: 8, [LzType.PLT1_BE]: 8, [LzType.PLT4_LE]: 2, [LzType.PLT4_BE]: 2, [LzType.PLT8]: 1,
};

export function decode(src: Uint8Array, opts: LzOptions): RgbaImage {
  if (src.length < HEADER_BYTES) throw new SpiceDecodeError('lz', `truncated header (${src.length} bytes)`);
  if (readBe32(src, 0) !== LZ_MAGIC) throw new SpiceDecodeError('lz', 'bad magic');
  if (readBe32(src, 4) !== LZ_VERSION) throw new SpiceDecodeError('lz', 'bad version');
  const type = readBe32(src, 8);
  const width = readBe32(src, 12);
  const height = readBe32(src, 16);
  const stride = readBe32(src, 20);
  const topDown = readBe32(src, 24) !== 0;
  checkDimensions('lz', width, height, opts.maxPixels);
  const cur: Cursor = { src, pos: HEADER_BYTES };
  const n = width * height;
  const img: RgbaImage = { width, height, data: new Uint8Array(n * 4) };

  switch (type) {
    case LzType.RGB32:
    case LzType.RGB24:
    case LzType.RGB16:
    case LzType.RGBA:
      // RGB literals come with alpha 255 and references copy whole pixels within the image: opaque as decoded.
      decodeRun(cur, img.data, 0, n, type === LzType.RGB16 ? LzType.RGB16 : LzType.RGB32);
      if (type === LzType.RGBA) decodeRun(cur, img.data, 0, n, LzType.XXXA);
      else markOpaque(img);
      break;
    case LzType.XXXA:
      decodeRun(cur, img.data, 0, n, LzType.XXXA);
      break;
    default: {
      const ppb = PLT_PIXELS_PER_BYTE[type];
      if (ppb === undefined) throw new SpiceDecodeError('lz', `unsupported type ${type}`);
      if (!opts.palette) throw new SpiceDecodeError('lz', 'palettized LZ without palette');
      if (stride * ppb < width || stride > width + 1)
        throw new SpiceDecodeError('lz', `bad stride ${stride} for width ${width}`);
      const indices = new Uint8Array(stride * height);
      decodeRun(cur, indices, 0, indices.length, LzType.PLT8);
      expandPalette(indices, stride, type, ppb, opts.palette, img);
    }
  }
  if (!topDown) flipRows(img);
  return img;
}

/** Index bytes → RGBA. 4-bit indices wrap modulo the palette size as in lz_decompress_tmpl.c. */
function expandPalette(
  idx: Uint8Array,
  stride: number,
  type: number,
  ppb: number,
  pal: Uint32Array,
  img: RgbaImage,
): void {
  const out = img.data;
  const bits = 8 / ppb;
  const lsbFirst = type === LzType.PLT1_LE || type === LzType.PLT4_LE;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const byte = idx[y * stride + Math.floor(x / ppb)]!;
      const slot = x % ppb;
      const shift = lsbFirst ? slot * bits : 8 - bits - slot * bits;
      let i = (byte >> shift) & ((1 << bits) - 1);
      if (bits === 4 && pal.length) i %= pal.length;
      const rgb = pal[i] ?? 0;
      const o = (y * img.width + x) * 4;
      out[o] = (rgb >>> 16) & 255;
      out[o + 1] = (rgb >>> 8) & 255;
      out[o + 2] = rgb & 255;
      out[o + 3] = 255;
    }
  }
}
