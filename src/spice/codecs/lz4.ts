// SPICE image type LZ4 (spice.proto `LZ4Data`; encoder spice-server server/lz4-encoder.c, decoder
// spice-common common/canvas_base.c canvas_get_lz4): {top_down u8, bitmap format u8} followed by
// LZ4 blocks, each {compressed size u32 big-endian, block}, whose output is the raw bitmap
// (stride = width × bytes per pixel; 16BIT, 24BIT, 32BIT or RGBA). The blocks are *linked*
// (LZ4_decompress_safe_continue into one contiguous buffer): a match may reach back into the
// output of earlier blocks. Block format: lz4 doc/lz4_Block_format.md — token (literal length
// high nibble, match length − 4 low nibble, 15 ⇒ continued by bytes while 255), literals,
// offset u16 LE (≥ 1), extended match length.
import { BitmapFmt } from '../proto/constants.ts';
import { SpiceDecodeError } from '../proto/errors.ts';
import * as bitmap from './bitmap.ts';
import { checkDimensions, type RgbaImage } from './types.ts';

const BYTES_PER_PIXEL: Record<number, number> = {
  [BitmapFmt['16BIT']]: 2, [BitmapFmt['24BIT']]: 3, [BitmapFmt['32BIT']]: 4, [BitmapFmt.RGBA]: 4,
};

function fail(msg: string): never {
  throw new SpiceDecodeError('lz4', msg);
}

/** The image size comes from the SpiceImage descriptor: the LZ4 payload does not repeat it. */
export function decode(src: Uint8Array, width: number, height: number, maxPixels: number): RgbaImage {
  if (src.length < 2) fail('missing header');
  const topDown = src[0] !== 0;
  const format = src[1]!;
  const bpp = BYTES_PER_PIXEL[format];
  if (bpp === undefined) fail(`unsupported bitmap format ${format}`);
  checkDimensions('lz4', width, height, maxPixels);
  const out = new Uint8Array(width * height * bpp);
  let op = 0;
  let ip = 2;
  do {
    if (ip + 4 > src.length) fail('truncated block header');
    const size = ((src[ip]! << 24) | (src[ip + 1]! << 16) | (src[ip + 2]! << 8) | src[ip + 3]!) >>> 0;
    ip += 4;
    if (size === 0 || size > src.length - ip) fail(`block of ${size} bytes overruns the data`);
    op = decodeBlock(src, ip, ip + size, out, op);
    ip += size;
  } while (ip < src.length);
  if (op !== out.length) fail(`decoded ${op} bytes, expected ${out.length}`);
  return bitmap.decode(out, { format, topDown, width, height, stride: width * bpp }, maxPixels);
}

/** Decodes one block from src[ip, end) into out at op; returns the new output position. */
function decodeBlock(src: Uint8Array, ip: number, end: number, out: Uint8Array, op: number): number {
  const length = (n: number): number => {
    if (n !== 15) return n;
    let b: number;
    do {
      if (ip >= end) fail('truncated length');
      b = src[ip++]!;
      n += b;
    } while (b === 255);
    return n;
  };
  for (;;) {
    if (ip >= end) fail('truncated block');
    const token = src[ip++]!;
    const lit = length(token >> 4);
    if (lit > end - ip || lit > out.length - op) fail('literals overrun');
    out.set(src.subarray(ip, ip + lit), op);
    ip += lit;
    op += lit;
    if (ip === end) return op; // the last sequence has literals only
    if (ip + 2 > end) fail('truncated offset');
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op) fail(`match offset ${offset} before the start of the output`);
    const len = length(token & 15) + 4;
    if (len > out.length - op) fail('match overruns the image');
    let from = op - offset;
    if (offset >= len) {
      out.copyWithin(op, from, from + len);
      op += len;
    } else {
      for (const stop = op + len; op < stop; ) out[op++] = out[from++]!;
    }
  }
}
