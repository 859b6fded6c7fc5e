// Drawing targets of the display channel. A Surface is RGBA; the display channel clips every
// operation to the DisplayBase box, the clip rects and the surface bounds before calling it.
// Implemented here by RgbaSurface (plain Uint8Array, Node and tests) and on the web by a canvas.
import { forgetOpacity, knownOpacity, markOpaque, type RgbaImage } from './codecs/types.ts';
import { ALPHA_BITS } from './draw/pixel.ts';

export interface Rect {
  left: number;
  top: number;
  right: number; // exclusive
  bottom: number; // exclusive
}

export interface Surface {
  readonly width: number;
  readonly height: number;
  /** Fills `rect` with a colour given as 0xRRGGBB (SPICE brushes are xRGB; alpha is opaque). */
  fill(rect: Rect, rgb: number): void;
  /** Copies `img` pixels starting at (sx, sy) to `rect`. */
  putImage(img: RgbaImage, sx: number, sy: number, rect: Rect): void;
  /** Copies the area of `rect`'s size at (sx, sy) to `rect`, overlapping areas allowed (COPY_BITS). */
  copyBits(sx: number, sy: number, rect: Rect): void;
  /** Reads pixels (a SURFACE image used as a source, screenshots). */
  getImage(rect: Rect): RgbaImage;
}

export function intersect(a: Rect, b: Rect): Rect | null {
  const r = {
    left: Math.max(a.left, b.left),
    top: Math.max(a.top, b.top),
    right: Math.min(a.right, b.right),
    bottom: Math.min(a.bottom, b.bottom),
  };
  return r.left < r.right && r.top < r.bottom ? r : null;
}

export class RgbaSurface implements Surface {
  readonly data: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.data = new Uint8Array(width * height * 4);
    // Opaque black in one native fill (a byte loop costs milliseconds on a fresh process: `oriel console screenshot`).
    new Uint32Array(this.data.buffer).fill(ALPHA_BITS);
    // Known opaque (codecs/types.ts markOpaque) while every image put on it is: an encoder then need not look.
    markOpaque(this);
  }

  private _clip(rect: Rect): Rect | null {
    return intersect(rect, { left: 0, top: 0, right: this.width, bottom: this.height });
  }

  fill(rect: Rect, rgb: number): void {
    const r = this._clip(rect);
    if (!r) return;
    const px = new Uint8Array([(rgb >>> 16) & 255, (rgb >>> 8) & 255, rgb & 255, 255]);
    const w = r.right - r.left;
    const row = new Uint8Array(w * 4);
    for (let i = 0; i < w; i++) row.set(px, i * 4);
    for (let y = r.top; y < r.bottom; y++) this.data.set(row, (y * this.width + r.left) * 4);
  }

  putImage(img: RgbaImage, sx: number, sy: number, rect: Rect): void {
    // Clip destination to the surface and the source to the image, moving both origins together.
    const dst = this._clip(rect);
    if (!dst) return;
    const x0 = sx + (dst.left - rect.left);
    const y0 = sy + (dst.top - rect.top);
    const w = Math.min(dst.right - dst.left, img.width - x0);
    const h = Math.min(dst.bottom - dst.top, img.height - y0);
    if (w <= 0 || h <= 0 || x0 < 0 || y0 < 0) return;
    if (knownOpacity(img) !== true) forgetOpacity(this);
    for (let y = 0; y < h; y++) {
      const s = ((y0 + y) * img.width + x0) * 4;
      this.data.set(img.data.subarray(s, s + w * 4), ((dst.top + y) * this.width + dst.left) * 4);
    }
  }

  copyBits(sx: number, sy: number, rect: Rect): void {
    const from = { left: sx, top: sy, right: sx + rect.right - rect.left, bottom: sy + rect.bottom - rect.top };
    const src = this.getImage(from);
    // Pixels of an opaque surface are opaque (outside it getImage gives transparent black).
    const inside = from.left >= 0 && from.top >= 0 && from.right <= this.width && from.bottom <= this.height;
    if (inside && knownOpacity(this)) markOpaque(src);
    this.putImage(src, 0, 0, rect);
  }

  getImage(rect: Rect): RgbaImage {
    const width = Math.max(0, rect.right - rect.left);
    const height = Math.max(0, rect.bottom - rect.top);
    const out = new Uint8Array(width * height * 4);
    const r = this._clip(rect);
    if (r) {
      for (let y = r.top; y < r.bottom; y++) {
        const s = (y * this.width + r.left) * 4;
        out.set(this.data.subarray(s, s + (r.right - r.left) * 4), ((y - rect.top) * width + (r.left - rect.left)) * 4);
      }
    }
    return { width, height, data: out };
  }
}
