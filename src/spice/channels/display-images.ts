// SpiceImage parsing and decoding for the display channel: the descriptor, the per-type payload
// (spice.proto `struct Image`), the pixmap and palette caches whose eviction the server dictates
// (INVAL_LIST / INVAL_ALL_PIXMAPS / INVAL_PALETTE), and dispatch to one codec per file.
import * as bitmap from '../codecs/bitmap.ts';
import type { GlzWindow } from '../codecs/glz.ts';
import * as glz from '../codecs/glz.ts';
import * as jpeg from '../codecs/jpeg.ts';
import * as jpegAlpha from '../codecs/jpeg-alpha.ts';
import * as lz from '../codecs/lz.ts';
import * as lz4 from '../codecs/lz4.ts';
import * as quic from '../codecs/quic.ts';
import * as zlibGlz from '../codecs/zlib-glz.ts';
import { checkDimensions, type RgbaImage } from '../codecs/types.ts';
import { BitmapFlags, ImageFlags, ImageType, nameOf } from '../proto/constants.ts';
import { SpiceDecodeError, SpiceProtocolError } from '../proto/errors.ts';
import type { Reader } from '../proto/reader.ts';
import type { Surface } from '../surface.ts';
import { maskFromBitmap, maskFromImage, maskToImage, type MaskBits } from '../draw/mask.ts';
import { imageSource, surfaceSource, type PixelSource } from '../draw/source.ts';

/** Caches shared by all display channels of a session (same pixmap_cache_id / glz_dictionary_id). */
export interface ImageCaches {
  pixmaps: Map<bigint, RgbaImage>;
  palettes: Map<bigint, Uint32Array>;
  glz: GlzWindow;
}

export interface ImageContext {
  caches: ImageCaches;
  maxImagePixels: number;
  surface(id: number): Surface | undefined;
  /** The surface keeps real alpha (32_ARGB, A8, A1). */
  surfaceHasAlpha(id: number): boolean;
  /** Decoded images by image type name ("bitmap", "lz_rgb", "quic", "glz_rgb", "from_cache" …). */
  decoded: Record<string, number>;
  /** Pixels of those images, by the same names. */
  decodedPixels: Record<string, number>;
}

export interface ImageDescriptor {
  id: bigint;
  type: number;
  flags: number;
  width: number;
  height: number;
}

function count(ctx: ImageContext, type: number, img: RgbaImage): void {
  const k = nameOf(ImageType, type).toLowerCase();
  ctx.decoded[k] = (ctx.decoded[k] ?? 0) + 1;
  ctx.decodedPixels[k] = (ctx.decodedPixels[k] ?? 0) + img.width * img.height;
}

/** spice.proto `struct Palette` {unique u64, num_ents u16, ents u32[num_ents]}. */
function readPalette(r: Reader, flags: number, ctx: ImageContext, body: Reader): Uint32Array | undefined {
  if (flags & BitmapFlags.PAL_FROM_CACHE) {
    const id = r.u64();
    const pal = ctx.caches.palettes.get(id);
    if (!pal) throw new SpiceProtocolError(`palette ${id} not in cache`);
    return pal;
  }
  const ptr = r.u32();
  if (ptr === 0) return undefined;
  const p = body.at(ptr, 'Palette');
  const unique = p.u64();
  const n = p.count(p.u16(), 4);
  const ents = new Uint32Array(n);
  for (let i = 0; i < n; i++) ents[i] = p.u32();
  if (flags & BitmapFlags.PAL_CACHE_ME) ctx.caches.palettes.set(unique, ents);
  return ents;
}

function readDescriptor(body: Reader, ptr: number): { r: Reader; d: ImageDescriptor } {
  if (ptr === 0) throw new SpiceProtocolError('NULL image pointer');
  const r = body.at(ptr, 'Image');
  return { r, d: { id: r.u64(), type: r.u8(), flags: r.u8(), width: r.u32(), height: r.u32() } };
}

/**
 * The pixels a drawing command reads from the Image at `ptr`: a decoded image, or for image type
 * SURFACE the surface itself, read lazily (only the source area is copied).
 */
export function readSource(body: Reader, ptr: number, ctx: ImageContext): PixelSource {
  const { r, d } = readDescriptor(body, ptr);
  if (d.type !== ImageType.SURFACE) return imageSource(finishImage(r, body, d, ctx));
  const id = r.u32();
  const s = ctx.surface(id);
  if (!s) throw new SpiceProtocolError(`SURFACE image of unknown surface ${id}`);
  ctx.decoded.surface = (ctx.decoded.surface ?? 0) + 1;
  return surfaceSource(s, ctx.surfaceHasAlpha(id));
}

function surfaceOf(r: Reader, ctx: ImageContext): Surface {
  const id = r.u32();
  const s = ctx.surface(id);
  if (!s) throw new SpiceProtocolError(`SURFACE image of unknown surface ${id}`);
  return s;
}

/**
 * The Image at `ptr` as a QMask bitmap: a 1-bit BITMAP (no palette; cached white on black when
 * CACHE_ME), a cached mask, or a surface (set where its alpha is at least half, or not black).
 */
export function readMaskImage(body: Reader, ptr: number, ctx: ImageContext): MaskBits {
  const { r, d } = readDescriptor(body, ptr);
  switch (d.type) {
    case ImageType.BITMAP: {
      const format = r.u8();
      const flags = r.u8();
      const width = r.u32();
      const height = r.u32();
      const stride = r.u32();
      if (flags & BitmapFlags.PAL_FROM_CACHE) r.u64();
      else r.u32(); // a palette pointer; masks have none
      if (width !== d.width || height !== d.height)
        throw new SpiceDecodeError('mask', `bitmap ${width}×${height}, descriptor says ${d.width}×${d.height}`);
      checkDimensions('mask', width, height, ctx.maxImagePixels);
      if (stride * height > r.remaining)
        throw new SpiceDecodeError('mask', `needs ${stride * height} bytes, ${r.remaining} left`);
      const m = maskFromBitmap(
        format,
        (flags & BitmapFlags.TOP_DOWN) !== 0,
        width,
        height,
        stride,
        r.bytesView(stride * height),
      );
      ctx.decoded.mask = (ctx.decoded.mask ?? 0) + 1;
      if (d.flags & (ImageFlags.CACHE_ME | ImageFlags.CACHE_REPLACE_ME)) ctx.caches.pixmaps.set(d.id, maskToImage(m));
      return m;
    }
    case ImageType.SURFACE: {
      const id = r.u32();
      const s = ctx.surface(id);
      if (!s) throw new SpiceProtocolError(`SURFACE mask of unknown surface ${id}`);
      return maskFromImage(s.getImage({ left: 0, top: 0, right: s.width, bottom: s.height }), ctx.surfaceHasAlpha(id));
    }
    default:
      return maskFromImage(finishImage(r, body, d, ctx), false);
  }
}

/** Decodes the Image that `ptr` (an offset into the message body) points to. */
export function readImage(body: Reader, ptr: number, ctx: ImageContext): RgbaImage {
  const { r, d } = readDescriptor(body, ptr);
  return finishImage(r, body, d, ctx);
}

function finishImage(r: Reader, body: Reader, d: ImageDescriptor, ctx: ImageContext): RgbaImage {
  const img = decodePayload(r, body, d, ctx);
  if (img.width !== d.width || img.height !== d.height) {
    throw new SpiceDecodeError(
      nameOf(ImageType, d.type),
      `decoded ${img.width}×${img.height}, descriptor says ${d.width}×${d.height}`,
    );
  }
  count(ctx, d.type, img);
  if (d.flags & (ImageFlags.CACHE_ME | ImageFlags.CACHE_REPLACE_ME)) ctx.caches.pixmaps.set(d.id, img);
  return img;
}

function decodePayload(r: Reader, body: Reader, d: ImageDescriptor, ctx: ImageContext): RgbaImage {
  switch (d.type) {
    case ImageType.BITMAP: {
      const format = r.u8();
      const flags = r.u8();
      const width = r.u32();
      const height = r.u32();
      const stride = r.u32();
      const palette = readPalette(r, flags, ctx, body);
      if (stride * height > r.remaining)
        throw new SpiceDecodeError('bitmap', `needs ${stride * height} bytes, ${r.remaining} left`);
      const data = r.bytesView(stride * height);
      return bitmap.decode(
        data,
        { format, topDown: (flags & BitmapFlags.TOP_DOWN) !== 0, width, height, stride, palette },
        ctx.maxImagePixels,
      );
    }
    case ImageType.LZ_RGB:
      return lz.decode(binaryData(r), { maxPixels: ctx.maxImagePixels });
    case ImageType.LZ_PLT: {
      const flags = r.u8();
      const size = r.u32();
      const palette = readPalette(r, flags, ctx, body);
      if (!palette) throw new SpiceProtocolError('LZ_PLT without palette');
      return lz.decode(r.bytesView(size), { maxPixels: ctx.maxImagePixels, palette });
    }
    case ImageType.QUIC:
      return quic.decode(binaryData(r), ctx.maxImagePixels);
    case ImageType.GLZ_RGB:
      return glz.decode(binaryData(r), ctx.caches.glz, ctx.maxImagePixels);
    case ImageType.ZLIB_GLZ_RGB: {
      const glzSize = r.u32();
      return zlibGlz.decode(glzSize, binaryData(r), ctx.caches.glz, ctx.maxImagePixels);
    }
    case ImageType.JPEG:
      return jpeg.decode(binaryData(r), { maxPixels: ctx.maxImagePixels });
    case ImageType.JPEG_ALPHA: {
      const flags = r.u8();
      const jpegSize = r.u32();
      return jpegAlpha.decode(flags, jpegSize, binaryData(r), ctx.maxImagePixels);
    }
    case ImageType.LZ4:
      return lz4.decode(binaryData(r), d.width, d.height, ctx.maxImagePixels);
    case ImageType.FROM_CACHE:
    case ImageType.FROM_CACHE_LOSSLESS: {
      const img = ctx.caches.pixmaps.get(d.id);
      if (!img) throw new SpiceProtocolError(`image ${d.id} not in pixmap cache`);
      return img;
    }
    case ImageType.SURFACE: {
      const s = surfaceOf(r, ctx);
      return s.getImage({ left: 0, top: 0, right: s.width, bottom: s.height });
    }
    default:
      throw new SpiceDecodeError(nameOf(ImageType, d.type), 'image type not supported');
  }
}

/** spice.proto `struct BinaryData` {data_size u32, data[data_size]}. */
function binaryData(r: Reader): Uint8Array {
  return r.bytesView(r.u32());
}
