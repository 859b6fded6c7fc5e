// Raster operations. A binary rop is kept as a 4-bit truth table over (source bit, destination
// bit): bit ((s << 1) | d) is the result. A ternary rop (DRAW_ROP3) is the Windows ternary raster
// operation code itself: bit ((p << 2) | (s << 1) | d) of the code is the result for pattern bit p,
// source bit s and destination bit d (spice-common rop3.c checks each handler against
// P = 0xF0, S = 0xCC, D = 0xAA, which yields the code). Both apply bitwise to whole 32-bit pixels,
// alpha byte included, as pixman_utils.c and rop3.c do.
import { Ropd } from '../proto/constants.ts';

/** Binary rops as truth tables (the 16 X11-style operations of spice-common's SpiceROP). */
export const Rop2 = {
  CLEAR: 0b0000, NOR: 0b0001, AND_INVERTED: 0b0010, COPY_INVERTED: 0b0011, AND_REVERSE: 0b0100,
  INVERT: 0b0101, XOR: 0b0110, NAND: 0b0111, AND: 0b1000, EQUIV: 0b1001, NOOP: 0b1010,
  OR_INVERTED: 0b1011, COPY: 0b1100, OR_REVERSE: 0b1101, OR: 0b1110, SET: 0b1111,
} as const;

/**
 * Which operand the descriptor's INVERS_* flags refer to: DRAW_FILL / STROKE / TEXT combine the
 * brush with the destination, COPY / BLEND the source image with the destination, and OPAQUE the
 * brush with the source image drawn just before (canvas_base.c ropd_descriptor_to_rop callers).
 */
export type RopInputs = 'brush-dest' | 'src-dest' | 'brush-src';

/**
 * spice.proto `flags16 ropd` → truth table. One OP_* bit chooses the operation (PUT before OR
 * before AND before XOR before BLACKNESS, WHITENESS, INVERS; none is PUT); for PUT, OR, AND and
 * XOR the operands are inverted first and the result after, as the flags say. BLACKNESS,
 * WHITENESS and INVERS ignore the inversion flags, as canvas_base.c does.
 */
export function ropFromDescriptor(desc: number, inputs: RopInputs): number {
  const invSrc = (desc & (inputs === 'src-dest' ? Ropd.INVERS_SRC : Ropd.INVERS_BRUSH)) !== 0;
  const invDest = (desc & (inputs === 'brush-src' ? Ropd.INVERS_SRC : Ropd.INVERS_DEST)) !== 0;
  const invRes = (desc & Ropd.INVERS_RES) !== 0;
  let op: (s: number, d: number) => number;
  if (desc & Ropd.OP_PUT) op = (s) => s;
  else if (desc & Ropd.OP_OR) op = (s, d) => s | d;
  else if (desc & Ropd.OP_AND) op = (s, d) => s & d;
  else if (desc & Ropd.OP_XOR) op = (s, d) => s ^ d;
  else if (desc & Ropd.OP_BLACKNESS) return Rop2.CLEAR;
  else if (desc & Ropd.OP_WHITENESS) return Rop2.SET;
  else if (desc & Ropd.OP_INVERS) return Rop2.INVERT;
  else return Rop2.COPY;
  let table = 0;
  for (let s = 0; s < 2; s++) {
    for (let d = 0; d < 2; d++) {
      const r = op(invSrc ? 1 - s : s, invDest ? 1 - d : d) ^ (invRes ? 1 : 0);
      if (r) table |= 1 << ((s << 1) | d);
    }
  }
  return table;
}

/** Applies a binary rop (truth table) to one source and one destination word. */
export function rop2(table: number, s: number, d: number): number {
  let r = 0;
  if (table & 8) r |= s & d;
  if (table & 4) r |= s & ~d;
  if (table & 2) r |= ~s & d;
  if (table & 1) r |= ~s & ~d;
  return r >>> 0;
}

/** Applies a ternary rop code to pattern, source and destination words. */
export function rop3(code: number, p: number, s: number, d: number): number {
  let r = 0;
  for (let m = 0; m < 8; m++) {
    if (!((code >> m) & 1)) continue;
    r |= (m & 4 ? p : ~p) & (m & 2 ? s : ~s) & (m & 1 ? d : ~d);
  }
  return r >>> 0;
}

/**
 * out[i] = rop(src[i], dst[i]) for the pixels where `keep` (if given) is set. A solid source is a
 * number. `dst` is updated in place.
 */
export function applyRop2(table: number, src: Uint32Array | number, dst: Uint32Array, keep?: Uint8Array | null): void {
  if (table === Rop2.NOOP) return;
  const solid = typeof src === 'number';
  for (let i = 0; i < dst.length; i++) {
    if (keep && !keep[i]) continue;
    dst[i] = rop2(table, solid ? src : src[i]!, dst[i]!);
  }
}
