// RGBA images and surfaces → PNG with pngjs.
import { PNG } from 'pngjs';
import type { RgbaImage } from '../spice/index.ts';

/** Encodes an RGBA image as PNG; `opaque` forces alpha 255 (xRGB surfaces carry no alpha). */
export function encodePng(img: RgbaImage, opaque = true): Buffer {
  const png = new PNG({ width: img.width, height: img.height });
  png.data = Buffer.from(img.data);
  if (opaque) for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
  return PNG.sync.write(png);
}
