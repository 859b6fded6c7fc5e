// RGBA images and surfaces → PNG: a small encoder of its own (node:zlib deflate and CRC-32), since taking a
// screenshot is timed from process start and pngjs spends tens of milliseconds per screen on its adaptive filter.
import { crc32, deflateSync } from 'node:zlib';
import { knownOpacity } from '../spice/codecs/types.ts';
import type { RgbaImage } from '../spice/index.ts';

/** A PNG chunk: length, type, data, CRC-32 of type and data (PNG spec §5.3). */
function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))), 0);
  return Buffer.concat([head, data, crc]);
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The alpha byte of an RGBA pixel read as a 32-bit word in the platform's byte order. */
const ALPHA_WORD = new Uint32Array(Uint8Array.of(0, 0, 0, 255).buffer)[0]!;

/** Whether every pixel of `w`×`h` RGBA `src` has alpha 255 (a word at a time when aligned). */
function allOpaque(src: Uint8Array, n: number): boolean {
  if (src.byteOffset % 4 === 0) {
    const words = new Uint32Array(src.buffer, src.byteOffset, n);
    for (let i = 0; i < n; i++) if (((words[i]! & ALPHA_WORD) >>> 0) !== ALPHA_WORD) return false;
    return true;
  }
  for (let i = 3; i < n * 4; i += 4) if (src[i] !== 255) return false;
  return true;
}

/**
 * Encodes an RGBA image as PNG, 8 bits per channel, then zlib's fastest level (about three times faster than its
 * default on a screen). `opaque` (xRGB surfaces carry no alpha) writes RGB, each row with the Sub filter (the
 * difference to the pixel on the left: zeros on flat screen areas), unless every alpha byte is 255 already (a surface
 * as drawn: known so, or checked): then the rows go out as they are, RGBA unfiltered, the same pixels without a pass
 * of JavaScript over every byte (a screenshot is timed from process start, where such loops still run unoptimized).
 * Without `opaque`, RGBA with the Sub filter.
 */
export function encodePng(img: RgbaImage, opaque = true): Buffer {
  const { width: w, height: h, data: src } = img;
  if (src.length < w * h * 4) throw new Error(`image data of ${src.length} bytes is short for ${w}×${h} RGBA`);
  // A surface or image known to be opaque (codecs/types.ts markOpaque) is not looked at again.
  const asIs = opaque && (knownOpacity(img) ?? allOpaque(src, w * h));
  const rgb = opaque && !asIs;
  const bpp = rgb ? 3 : 4;
  const stride = w * bpp + 1;
  const raw = Buffer.allocUnsafe(stride * h);
  for (let y = 0; y < h; y++) {
    let o = y * stride;
    let i = y * w * 4;
    if (asIs) {
      raw[o] = 0; // filter type None
      raw.set(src.subarray(i, i + w * 4), o + 1);
      continue;
    }
    raw[o++] = 1; // filter type Sub
    let r = 0, g = 0, b = 0, a = 0;
    for (let x = 0; x < w; x++, i += 4) {
      const R = src[i]!, G = src[i + 1]!, B = src[i + 2]!;
      raw[o++] = (R - r) & 0xff;
      raw[o++] = (G - g) & 0xff;
      raw[o++] = (B - b) & 0xff;
      r = R;
      g = G;
      b = B;
      if (!rgb) {
        const A = src[i + 3]!;
        raw[o++] = (A - a) & 0xff;
        a = A;
      }
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = rgb ? 2 : 6; // colour type: truecolour, or truecolour with alpha
  // compression 0 (deflate), filter method 0, no interlace: bytes 10-12 stay 0
  const idat = deflateSync(raw, { level: 1 });
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}
