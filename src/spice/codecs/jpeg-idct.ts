// The 8×8 inverse DCT of baseline JPEG (ITU-T T.81 A.3.3):
//   s(y,x) = 1/4 Σu Σv C(u) C(v) S(v,u) cos((2x+1)uπ/16) cos((2y+1)vπ/16),  C(0) = 1/√2, else 1,
// computed separably with the Arai–Agui–Nakajima factorisation (the one libjpeg's float IDCT uses):
// 5 multiplications and 29 additions per 8 points instead of 64 multiply-adds. AAN leaves every
// coefficient (u, v) off by a factor S(u)·S(v), S(0) = 1, S(k) = √2·cos(kπ/16); that factor and the
// 1/8 of the two passes are folded into the dequantization table (scaledQuant), so the decoder
// multiplies each coefficient once, as before. Rows whose AC coefficients are all zero (most of them
// in quantized screen content) are a constant and skip the butterflies. Output: level shift (+128),
// rounding, clamping to 0..255.

/** AAN's per-frequency scale: S(0) = 1, S(k) = √2·cos(kπ/16). */
const AAN_SCALE = Float64Array.from({ length: 8 }, (_, k) => (k === 0 ? 1 : Math.SQRT2 * Math.cos((k * Math.PI) / 16)));

/**
 * Dequantization multipliers for the AAN IDCT: q (in zigzag order, as DQT gives it) times
 * S(u)·S(v)/8 of the coefficient's position; `zigzag[k]` is the natural index (v·8 + u) of entry k.
 */
export function scaledQuant(q: Uint16Array, zigzag: Uint8Array): Float64Array {
  const out = new Float64Array(64);
  for (let k = 0; k < 64; k++) {
    const n = zigzag[k]!;
    out[k] = (q[k]! * AAN_SCALE[n & 7]! * AAN_SCALE[n >> 3]!) / 8;
  }
  return out;
}

const R2 = Math.SQRT2; // 2·cos(π/4)
const C2X2 = 2 * Math.cos(Math.PI / 8); // 1.847759065
const C2MC6 = 2 * (Math.cos(Math.PI / 8) - Math.cos((3 * Math.PI) / 8)); // 1.082392200
const C2PC6 = 2 * (Math.cos(Math.PI / 8) + Math.cos((3 * Math.PI) / 8)); // 2.613125930

const ws = new Float64Array(64);

/**
 * One 8-point AAN inverse transform from src (elements at off + k·step) into dst (same layout).
 */
function idct8(src: Float64Array, so: number, ss: number, dst: Float64Array, d0: number, ds: number): void {
  // Even part
  const e0 = src[so]!, e2 = src[so + 2 * ss]!, e4 = src[so + 4 * ss]!, e6 = src[so + 6 * ss]!;
  const t10 = e0 + e4;
  const t11 = e0 - e4;
  const t13 = e2 + e6;
  const t12 = (e2 - e6) * R2 - t13;
  const a0 = t10 + t13;
  const a3 = t10 - t13;
  const a1 = t11 + t12;
  const a2 = t11 - t12;
  // Odd part
  const o1 = src[so + ss]!, o3 = src[so + 3 * ss]!, o5 = src[so + 5 * ss]!, o7 = src[so + 7 * ss]!;
  const z13 = o5 + o3;
  const z10 = o5 - o3;
  const z11 = o1 + o7;
  const z12 = o1 - o7;
  const b7 = z11 + z13;
  const b11 = (z11 - z13) * R2;
  const z5 = (z10 + z12) * C2X2;
  const b10 = z5 - z12 * C2MC6;
  const b12 = z5 - z10 * C2PC6;
  const b6 = b12 - b7;
  const b5 = b11 - b6;
  const b4 = b10 - b5;
  dst[d0] = a0 + b7;
  dst[d0 + 7 * ds] = a0 - b7;
  dst[d0 + ds] = a1 + b6;
  dst[d0 + 6 * ds] = a1 - b6;
  dst[d0 + 2 * ds] = a2 + b5;
  dst[d0 + 5 * ds] = a2 - b5;
  dst[d0 + 3 * ds] = a3 + b4;
  dst[d0 + 4 * ds] = a3 - b4;
}

/**
 * Transforms the dequantized, AAN-scaled coefficients `coef` (natural order, row-major v·8 + u) and
 * writes the 8×8 samples to `out` at `at` with row stride `stride`.
 */
export function idctBlock(coef: Float64Array, out: Uint8Array, at: number, stride: number): void {
  // Pass 1: columns (along v) into ws; a column with only its DC term is constant.
  for (let u = 0; u < 8; u++) {
    if (
      coef[8 + u] === 0 &&
      coef[16 + u] === 0 &&
      coef[24 + u] === 0 &&
      coef[32 + u] === 0 &&
      coef[40 + u] === 0 &&
      coef[48 + u] === 0 &&
      coef[56 + u] === 0
    ) {
      const dc = coef[u]!;
      for (let v = 0; v < 64; v += 8) ws[v + u] = dc;
      continue;
    }
    idct8(coef, u, 8, ws, u, 8);
  }
  // Pass 2: rows (along u), level shift, round, clamp.
  for (let y = 0; y < 8; y++) {
    const r = y * 8;
    const o = at + y * stride;
    idct8(ws, r, 1, ws, r, 1);
    for (let x = 0; x < 8; x++) {
      const s = ws[r + x]! + 128.5;
      out[o + x] = s <= 0 ? 0 : s >= 255 ? 255 : s | 0;
    }
  }
}
