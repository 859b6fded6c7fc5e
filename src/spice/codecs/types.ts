// What every codec produces: top-down RGBA, 4 bytes per pixel, stride = width × 4.
import { SpiceDecodeError } from '../proto/errors.ts';

export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** 16 Mi pixels (64 MiB RGBA): larger than any 4K surface, far below SPICE_MAX_IMAGE_SIZE. */
export const DEFAULT_MAX_IMAGE_PIXELS = 16 * 1024 * 1024;

/** Checks claimed dimensions before anything is allocated from them. */
export function checkDimensions(codec: string, width: number, height: number, maxPixels: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new SpiceDecodeError(codec, `invalid size ${width}×${height}`);
  }
  if (width * height > maxPixels) {
    throw new SpiceDecodeError(codec, `${width}×${height} exceeds the limit of ${maxPixels} pixels`);
  }
}

/** Reverses the row order in place (bottom-up bitmaps, top_down = 0 in LZ/QUIC headers). */
/**
 * Whether an image's alpha is 255 everywhere, when known: images are never modified after decoding, and an
 * RgbaSurface keeps the mark of its own pixels up to date through its drawing methods.
 */
const opacity = new WeakMap<Uint8Array, boolean>();

/** Records that `img` is opaque or not: a decoder that knows spares draw/pixel.ts isOpaque its look at every pixel. */
export function markOpaque(img: RgbaImage, opaque = true): void {
  opacity.set(img.data, opaque);
}

/** Drops what markOpaque recorded for `img` (its pixels changed in a way not known to keep alpha 255). */
export function forgetOpacity(img: RgbaImage): void {
  opacity.delete(img.data);
}

/** What markOpaque recorded for `img`, if anything. */
export function knownOpacity(img: RgbaImage): boolean | undefined {
  return opacity.get(img.data);
}

export function flipRows(img: RgbaImage): void {
  const stride = img.width * 4;
  const tmp = new Uint8Array(stride);
  for (let top = 0, bot = img.height - 1; top < bot; top++, bot--) {
    const a = top * stride;
    const b = bot * stride;
    tmp.set(img.data.subarray(a, a + stride));
    img.data.copyWithin(a, b, b + stride);
    img.data.set(tmp, b);
  }
}
