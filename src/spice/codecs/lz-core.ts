// The pixel-level LZ77 decoder inside SPICE LZ (spice-common common/lz_decompress_tmpl.c):
// a control byte < 32 announces ctrl+1 literal pixels; ≥ 32 is a back reference whose length is
// ctrl>>5 (7 ⇒ extended by following bytes until one ≠ 255) and whose distance is
// ((ctrl & 31) << 8) + next byte, extended to a 16-bit far distance + 8191 when both parts are all ones.
// Lengths are biased by the minimum match (1 px for 32-bit, 2 for 16-bit, 3 for byte units) and
// distances by 1. A distance of 1 is a run.
import { SpiceDecodeError } from '../proto/errors.ts';

/** lz_common.h LzImageType. */
export const LzType = {
  PLT1_LE: 1, PLT1_BE: 2, PLT4_LE: 3, PLT4_BE: 4, PLT8: 5, RGB16: 6, RGB24: 7, RGB32: 8, RGBA: 9,
  XXXA: 10, A8: 11,
} as const;

export interface Cursor {
  src: Uint8Array;
  pos: number;
}

/** lz.c MAX_DISTANCE: far distances are stored minus this. */
const MAX_DISTANCE = 8191;

export function truncated(codec: string): never {
  throw new SpiceDecodeError(codec, 'compressed data truncated');
}

/**
 * Decodes `n` units into `out` starting at unit 0. Modes (LzType values):
 * RGB32 — 3 literal bytes B,G,R per pixel into RGBA, alpha 255 (an RGB image is opaque as decoded, no second pass;
 *         an RGBA image's XXXA pass then writes every alpha byte);
 * RGB16 — 2 literal bytes (x1r5g5b5 big-endian) per pixel into RGBA, alpha 255;
 * XXXA  — the alpha pass of RGBA images: 1 literal byte per pixel into byte 3 of each RGBA pixel;
 * PLT8  — 1 byte per unit into a byte array (palette indices, packed sub-byte indices included).
 */
export function decodeRun(cur: Cursor, out: Uint8Array, start: number, n: number, mode: number): void {
  const src = cur.src;
  const end = src.length;
  let ip = cur.pos;
  let op = start;
  const limit = start + n;
  const bias = mode === LzType.RGB32 ? 1 : mode === LzType.RGB16 ? 2 : 3;
  while (op < limit) {
    if (ip >= end) truncated('lz');
    const ctrl = src[ip++]!;
    if (ctrl >= 32) {
      let len = (ctrl >> 5) - 1;
      let ofs = (ctrl & 31) << 8;
      if (len === 6) {
        let code: number;
        do {
          if (ip >= end) truncated('lz');
          code = src[ip++]!;
          len += code;
        } while (code === 255);
      }
      if (ip >= end) truncated('lz');
      const code = src[ip++]!;
      ofs += code;
      if (code === 255 && ofs - code === 31 << 8) {
        if (ip + 2 > end) truncated('lz');
        ofs = ((src[ip]! << 8) | src[ip + 1]!) + MAX_DISTANCE;
        ip += 2;
      }
      len += bias;
      ofs += 1;
      const ref = op - ofs;
      if (ref < start || op + len > limit)
        throw new SpiceDecodeError('lz', `reference out of range (distance ${ofs}, length ${len})`);
      copyUnits(out, ref, op, len, mode);
      op += len;
    } else {
      const count = ctrl + 1;
      if (op + count > limit) throw new SpiceDecodeError('lz', 'literal run past the end of the image');
      ip = literals(src, ip, out, op, count, mode, 'lz');
      op += count;
    }
  }
  cur.pos = ip;
}

/** Copies `len` units from unit `from` to unit `to` front to back (overlap = repetition). */
export function copyUnits(out: Uint8Array, from: number, to: number, len: number, mode: number): void {
  if (mode === LzType.XXXA) {
    for (let i = 0; i < len; i++) out[(to + i) * 4 + 3] = out[(from + i) * 4 + 3]!;
  } else if (mode === LzType.PLT8) {
    repeatBytes(out, from, to, len);
  } else {
    repeatBytes(out, from * 4, to * 4, len * 4);
  }
}

/** Below this many bytes an overlapping copy goes byte by byte; above, by native copies. */
const SHORT_COPY = 64;

/**
 * out[to + i] = out[from + i] for i = 0 … n-1 in that order, so an overlap repeats the `to - from` bytes before
 * `to`. Long overlapping runs (a flat screen area is one pixel repeated thousands of times) go by doubling native
 * copies: the bytes from `from` to the write position are that period over and over, so they can be copied whole.
 */
function repeatBytes(out: Uint8Array, from: number, to: number, n: number): void {
  if (to - from >= n) {
    out.copyWithin(to, from, from + n);
  } else if (n <= SHORT_COPY) {
    for (let i = 0; i < n; i++) out[to + i] = out[from + i]!;
  } else {
    const end = to + n;
    let at = to;
    while (at < end) {
      const k = Math.min(at - from, end - at);
      out.copyWithin(at, from, from + k);
      at += k;
    }
  }
}

/** Reads `count` literal units at `ip`; returns the new input position. */
export function literals(
  src: Uint8Array,
  ip: number,
  out: Uint8Array,
  op: number,
  count: number,
  mode: number,
  codec: string,
): number {
  switch (mode) {
    case LzType.RGB32: {
      if (ip + count * 3 > src.length) truncated(codec);
      for (let o = op * 4, e = (op + count) * 4; o < e; o += 4, ip += 3) {
        out[o] = src[ip + 2]!;
        out[o + 1] = src[ip + 1]!;
        out[o + 2] = src[ip]!;
        out[o + 3] = 255;
      }
      return ip;
    }
    case LzType.RGB16: {
      if (ip + count * 2 > src.length) truncated(codec);
      for (let o = op * 4, e = (op + count) * 4; o < e; o += 4, ip += 2) {
        const v = (src[ip]! << 8) | src[ip + 1]!;
        const r = (v >> 10) & 31;
        const g = (v >> 5) & 31;
        const b = v & 31;
        out[o] = (r << 3) | (r >> 2);
        out[o + 1] = (g << 3) | (g >> 2);
        out[o + 2] = (b << 3) | (b >> 2);
        out[o + 3] = 255;
      }
      return ip;
    }
    case LzType.XXXA:
      if (ip + count > src.length) truncated(codec);
      for (let i = 0; i < count; i++) out[(op + i) * 4 + 3] = src[ip++]!;
      return ip;
    default:
      if (ip + count > src.length) truncated(codec);
      out.set(src.subarray(ip, ip + count), op);
      return ip + count;
  }
}
