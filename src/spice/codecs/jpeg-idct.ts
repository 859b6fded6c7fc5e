// The 8×8 inverse DCT of baseline JPEG (ITU-T T.81 A.3.3):
//   s(y,x) = 1/4 Σu Σv C(u) C(v) S(v,u) cos((2x+1)uπ/16) cos((2y+1)vπ/16),  C(0) = 1/√2, else 1,
// computed separably (rows, then columns) with a cosine table, plus the level shift (+128) and
// clamping to 0..255. Zero coefficients at the end of a row, and all-zero rows, are skipped: after
// quantization most of a screen-content block is zero.

/** COS[x * 8 + u] = C(u)/2 · cos((2x+1)uπ/16). */
const COS = new Float64Array(64);
for (let x = 0; x < 8; x++) {
  for (let u = 0; u < 8; u++) COS[x * 8 + u] = ((u === 0 ? Math.SQRT1_2 : 1) / 2) * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
}

const tmp = new Float64Array(64);

/**
 * Transforms the dequantized coefficients `coef` (natural order, row-major v*8+u) and writes the 8×8
 * samples to `out` at `at` with row stride `stride`.
 */
export function idctBlock(coef: Int32Array, out: Uint8Array, at: number, stride: number): void {
  // Pass 1: along u for each row v → tmp[v*8 + x], summing only up to the row's last non-zero
  // coefficient. `rows` = 1 + the last row with a coefficient: pass 2 sums over those rows only
  // (screen content rarely has high frequencies).
  let rows = 0;
  for (let v = 0; v < 64; v += 8) {
    let n = 8;
    while (n > 0 && coef[v + n - 1] === 0) n--;
    if (n === 0) {
      tmp.fill(0, v, v + 8);
      continue;
    }
    rows = (v >> 3) + 1;
    for (let x = 0; x < 8; x++) {
      const c = x * 8;
      let s = 0;
      for (let u = 0; u < n; u++) s += coef[v + u]! * COS[c + u]!;
      tmp[v + x] = s;
    }
  }
  // Pass 2: along v for each column x, plus the level shift (+128, +0.5 to round); clamp to 0..255.
  for (let x = 0; x < 8; x++) {
    for (let y = 0; y < 8; y++) {
      const c = y * 8;
      let s = 128.5;
      for (let v = 0; v < rows; v++) s += tmp[v * 8 + x]! * COS[c + v]!;
      out[at + y * stride + x] = s <= 0 ? 0 : s >= 255 ? 255 : s | 0;
    }
  }
}
