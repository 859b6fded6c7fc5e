// Pixels a drawing command reads: a decoded image, or a surface (image type SURFACE, spice.proto
// `struct Surface`), read only where needed so that copying from a large off-screen surface does
// not copy all of it.
import type { RgbaImage } from '../codecs/types.ts';
import type { Rect, Surface } from '../surface.ts';
import { isOpaque } from './pixel.ts';

export interface PixelSource {
  readonly width: number;
  readonly height: number;
  /** The decoded image itself, when the source is one (drawn without a copy). */
  readonly image?: RgbaImage;
  /** Every pixel has alpha 255 (a fully opaque image, or a surface without alpha). */
  readonly opaque: boolean;
  /** RGBA pixels of `rect`; transparent black (all zero) outside the source. */
  read(rect: Rect): RgbaImage;
}

export function imageSource(img: RgbaImage): PixelSource {
  return {
    width: img.width,
    height: img.height,
    image: img,
    get opaque() {
      return isOpaque(img);
    },
    read(rect: Rect): RgbaImage {
      const w = Math.max(0, rect.right - rect.left);
      const h = Math.max(0, rect.bottom - rect.top);
      if (rect.left === 0 && rect.top === 0 && w === img.width && h === img.height) return img;
      const out = new Uint8Array(w * h * 4);
      const x0 = Math.max(0, rect.left);
      const x1 = Math.min(img.width, rect.right);
      if (x1 > x0) {
        for (let y = Math.max(0, rect.top); y < Math.min(img.height, rect.bottom); y++) {
          const s = (y * img.width + x0) * 4;
          out.set(img.data.subarray(s, s + (x1 - x0) * 4), ((y - rect.top) * w + (x0 - rect.left)) * 4);
        }
      }
      return { width: w, height: h, data: out };
    },
  };
}

export function surfaceSource(surface: Surface, hasAlpha: boolean): PixelSource {
  return { width: surface.width, height: surface.height, opaque: !hasAlpha, read: (rect) => surface.getImage(rect) };
}

export function readAll(src: PixelSource): RgbaImage {
  return src.read({ left: 0, top: 0, right: src.width, bottom: src.height });
}
