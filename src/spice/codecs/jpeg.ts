// Baseline JPEG (ITU-T T.81, sequential DCT, Huffman, 8-bit; SOF0/SOF1), the format of SPICE image
// type JPEG (server/jpeg-encoder.c: libjpeg defaults, YCbCr 4:2:0, quality 85) and of MJPEG
// stream frames (server/mjpeg-encoder.c). Any sampling factors 1–4, interleaved or one scan per
// component, restart intervals, 1 (grey) or 3 (YCbCr; RGB with Adobe transform 0) components.
// Progressive, lossless, arithmetic-coded and 12-bit JPEG are refused (no SPICE server makes them).
// MJPEG frames after the first may omit DQT/DHT (jpeg_start_compress(write_all_tables = first
// frame)): pass the same JpegTables to every frame of a stream so tables carry over, as libjpeg's
// reused decompressor does in spice-gtk.
import { SpiceDecodeError } from '../proto/errors.ts';
import { idctBlock, scaledQuant } from './jpeg-idct.ts';
import { checkDimensions, type RgbaImage } from './types.ts';

/** T.81 Figure A.6: zigzag index → natural (row-major) index. */
const ZIGZAG = Uint8Array.from([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
  28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61,
  54, 47, 55, 62, 63,
]);

const LOOKAHEAD = 9;

interface Huffman {
  /** (length << 8) | value for codes of ≤ LOOKAHEAD bits, indexed by the next LOOKAHEAD bits; 0 = longer. */
  fast: Uint16Array;
  /** Per code length 1..16: largest code (-1 if none), and offset of its first value minus first code. */
  maxCode: Int32Array;
  valOffset: Int32Array;
  values: Uint8Array;
}

/** Quantization and Huffman tables, kept across the frames of an MJPEG stream. */
export class JpegTables {
  /** Dequantization multipliers per table, scaled for the AAN IDCT (jpeg-idct.ts scaledQuant), zigzag order. */
  readonly quant: (Float64Array | undefined)[] = [];
  readonly dc: (Huffman | undefined)[] = [];
  readonly ac: (Huffman | undefined)[] = [];
}

interface Component {
  id: number;
  h: number;
  v: number;
  tq: number;
  /** Blocks per line / column of this component's plane (whole MCUs). */
  bw: number;
  bh: number;
  plane: Uint8Array;
  pred: number;
  dc?: Huffman;
  ac?: Huffman;
}

function fail(msg: string): never {
  throw new SpiceDecodeError('jpeg', msg);
}

function be16(b: Uint8Array, at: number): number {
  if (at + 2 > b.length) fail('truncated');
  return (b[at]! << 8) | b[at + 1]!;
}

/** T.81 Annex C: canonical codes from the 16 code-length counts. */
function buildHuffman(counts: Uint8Array, values: Uint8Array): Huffman {
  const fast = new Uint16Array(1 << LOOKAHEAD);
  const maxCode = new Int32Array(17).fill(-1);
  const valOffset = new Int32Array(17);
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    const n = counts[len - 1]!;
    valOffset[len] = k - code;
    for (let i = 0; i < n; i++, k++, code++) {
      if (len <= LOOKAHEAD) {
        const shift = LOOKAHEAD - len;
        for (let j = 0; j < 1 << shift; j++) fast[(code << shift) | j] = (len << 8) | values[k]!;
      }
    }
    if (n) maxCode[len] = code - 1;
    if (code > 1 << len) fail('over-subscribed Huffman table');
    code <<= 1;
  }
  return { fast, maxCode, valOffset, values };
}

/** Entropy-coded data: removes 0xFF00 stuffing, stops at markers (then yields zero bits). */
class BitReader {
  private _buf = 0;
  private _bits = 0;
  /** Zero bytes supplied past a marker or the end; a corrupt stream cannot run on forever. */
  private _padding = 0;

  constructor(
    private readonly _src: Uint8Array,
    public pos: number,
  ) {}

  private _fill(): void {
    while (this._bits <= 24) {
      let b = 0;
      const src = this._src;
      if (this.pos < src.length && !(src[this.pos] === 0xff && src[this.pos + 1] !== 0)) {
        b = src[this.pos++]!;
        if (b === 0xff) this.pos++; // stuffed 0x00
      } else if (++this._padding > 1 << 16) {
        fail('entropy-coded data truncated');
      }
      this._buf = ((this._buf << 8) | b) >>> 0;
      this._bits += 8;
    }
  }

  bits(n: number): number {
    if (n === 0) return 0;
    if (this._bits < n) this._fill();
    this._bits -= n;
    return (this._buf >>> this._bits) & ((1 << n) - 1);
  }

  /** T.81 F.2.2.1 EXTEND: n-bit magnitude category value → signed. */
  signed(n: number): number {
    const v = this.bits(n);
    return v < 1 << (n - 1) ? v - (1 << n) + 1 : v;
  }

  symbol(h: Huffman): number {
    if (this._bits < 16) this._fill();
    const e = h.fast[(this._buf >>> (this._bits - LOOKAHEAD)) & ((1 << LOOKAHEAD) - 1)]!;
    if (e) {
      this._bits -= e >> 8;
      return e & 0xff;
    }
    let code = this.bits(LOOKAHEAD);
    for (let len = LOOKAHEAD + 1; len <= 16; len++) {
      code = (code << 1) | this.bits(1);
      if (code <= h.maxCode[len]!) return h.values[h.valOffset[len]! + code]!;
    }
    fail('invalid Huffman code');
  }

  /** At a restart interval: drop the partial byte, expect RSTn. */
  restart(): void {
    this._buf = 0;
    this._bits = 0;
    const src = this._src;
    if (src[this.pos] === 0xff && src[this.pos + 1]! >= 0xd0 && src[this.pos + 1]! <= 0xd7) this.pos += 2;
    else fail(`missing restart marker at ${this.pos}`);
  }
}

interface Frame {
  width: number;
  height: number;
  comps: Component[];
  hmax: number;
  vmax: number;
  mcusX: number;
  mcusY: number;
}

export interface JpegOptions {
  maxPixels: number;
  /** Tables carried over between frames (MJPEG); a fresh set per image when absent. */
  tables?: JpegTables;
}

export function decode(src: Uint8Array, opts: JpegOptions): RgbaImage {
  const tables = opts.tables ?? new JpegTables();
  if (src[0] !== 0xff || src[1] !== 0xd8) fail('missing SOI');
  let pos = 2;
  let frame: Frame | undefined;
  let restartInterval = 0;
  let adobeTransform = -1;
  let scans = 0;
  for (;;) {
    // Markers may be preceded by fill bytes 0xFF (T.81 B.1.1.2); anything else between segments is skipped.
    while (pos < src.length && src[pos] !== 0xff) pos++;
    while (pos < src.length && src[pos] === 0xff) pos++;
    if (pos >= src.length) break; // EOI missing: decode what the scans gave (libjpeg warns and does the same)
    const marker = src[pos++]!;
    if (marker === 0xd9) break; // EOI
    if (marker >= 0xd0 && marker <= 0xd8) continue; // RSTn outside a scan, SOI: no segment
    const len = be16(src, pos);
    if (len < 2 || pos + len > src.length) fail(`segment 0x${marker.toString(16)} of length ${len} overruns the data`);
    const seg = src.subarray(pos + 2, pos + len);
    pos += len;
    switch (marker) {
      case 0xc0:
      case 0xc1:
        if (frame) fail('second SOF');
        frame = readFrame(seg, opts.maxPixels);
        break;
      case 0xc4:
        readHuffmanTables(seg, tables);
        break;
      case 0xdb:
        readQuantTables(seg, tables);
        break;
      case 0xdd:
        restartInterval = be16(seg, 0);
        break;
      case 0xda:
        if (!frame) fail('SOS before SOF');
        pos = decodeScan(src, pos, seg, frame, tables, restartInterval);
        scans++;
        break;
      case 0xee: // Adobe APP14: byte 11 is the colour transform (0 = none, i.e. RGB)
        if (seg.length >= 12 && String.fromCharCode(...seg.subarray(0, 5)) === 'Adobe') adobeTransform = seg[11]!;
        break;
      default:
        if (marker >= 0xc2 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
          fail(`unsupported SOF 0x${marker.toString(16)} (only baseline Huffman)`);
        }
      // APPn, COM, DNL and the rest carry nothing needed here
    }
  }
  if (!frame || scans === 0) fail('no frame or no scan');
  return toRgba(frame, adobeTransform);
}

function readFrame(seg: Uint8Array, maxPixels: number): Frame {
  if (seg.length < 6) fail('short SOF');
  if (seg[0] !== 8) fail(`${seg[0]}-bit samples`);
  const height = be16(seg, 1);
  const width = be16(seg, 3);
  const n = seg[5]!;
  if (n !== 1 && n !== 3) fail(`${n} components`);
  if (seg.length < 6 + 3 * n) fail('short SOF');
  checkDimensions('jpeg', width, height, maxPixels);
  const raw = Array.from({ length: n }, (_, i) => ({
    id: seg[6 + 3 * i]!,
    h: seg[7 + 3 * i]! >> 4,
    v: seg[7 + 3 * i]! & 15,
    tq: seg[8 + 3 * i]!,
  }));
  for (const c of raw) if (c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.tq > 3) fail('bad component parameters');
  const hmax = Math.max(...raw.map((c) => c.h));
  const vmax = Math.max(...raw.map((c) => c.v));
  const mcusX = Math.ceil(width / (8 * hmax));
  const mcusY = Math.ceil(height / (8 * vmax));
  const comps = raw.map((c) => {
    const bw = mcusX * c.h;
    const bh = mcusY * c.v;
    return { ...c, bw, bh, plane: new Uint8Array(bw * bh * 64), pred: 0 };
  });
  return { width, height, comps, hmax, vmax, mcusX, mcusY };
}

function readQuantTables(seg: Uint8Array, tables: JpegTables): void {
  let p = 0;
  while (p < seg.length) {
    const pq = seg[p]! >> 4;
    const tq = seg[p]! & 15;
    p++;
    if (tq > 3 || pq > 1) fail('bad DQT');
    const size = pq ? 128 : 64;
    if (p + size > seg.length) fail('short DQT');
    const q = new Uint16Array(64);
    for (let k = 0; k < 64; k++) q[k] = pq ? be16(seg, p + 2 * k) : seg[p + k]!;
    tables.quant[tq] = scaledQuant(q, ZIGZAG);
    p += size;
  }
}

function readHuffmanTables(seg: Uint8Array, tables: JpegTables): void {
  let p = 0;
  while (p < seg.length) {
    const tc = seg[p]! >> 4;
    const th = seg[p]! & 15;
    if (tc > 1 || th > 3 || p + 17 > seg.length) fail('bad DHT');
    const counts = seg.subarray(p + 1, p + 17);
    const total = counts.reduce((a, b) => a + b, 0);
    p += 17;
    if (total > 256 || p + total > seg.length) fail('short DHT');
    const h = buildHuffman(counts, seg.slice(p, p + total));
    p += total;
    (tc ? tables.ac : tables.dc)[th] = h;
  }
}

function decodeScan(
  src: Uint8Array,
  pos: number,
  seg: Uint8Array,
  f: Frame,
  tables: JpegTables,
  restartInterval: number,
): number {
  const ns = seg[0] ?? 0;
  if (ns < 1 || ns > 4 || seg.length < 4 + 2 * ns) fail('bad SOS');
  const comps: Component[] = [];
  for (let i = 0; i < ns; i++) {
    const c = f.comps.find((x) => x.id === seg[1 + 2 * i]);
    if (!c) fail('SOS names an unknown component');
    c.dc = tables.dc[seg[2 + 2 * i]! >> 4];
    c.ac = tables.ac[seg[2 + 2 * i]! & 15];
    if (!c.dc || !c.ac) fail('scan uses an undefined Huffman table');
    if (!tables.quant[c.tq]) fail('component uses an undefined quantization table');
    c.pred = 0;
    comps.push(c);
  }
  const ss = seg[1 + 2 * ns]!;
  const se = seg[2 + 2 * ns]!;
  if (ss !== 0 || se !== 63 || seg[3 + 2 * ns] !== 0) fail('not a sequential scan');

  const r = new BitReader(src, pos);
  const coef = new Float64Array(64);
  const block = (c: Component, row: number, col: number): void => {
    const q = tables.quant[c.tq]!;
    coef.fill(0);
    const t = r.symbol(c.dc!);
    if (t > 11) fail('bad DC magnitude');
    c.pred += t ? r.signed(t) : 0;
    coef[0] = c.pred * q[0]!;
    for (let k = 1; k < 64; ) {
      const rs = r.symbol(c.ac!);
      const s = rs & 15;
      if (s === 0) {
        if (rs !== 0xf0) break; // EOB
        k += 16;
        continue;
      }
      k += rs >> 4;
      if (k > 63) fail('AC coefficient index beyond 63');
      coef[ZIGZAG[k]!] = r.signed(s) * q[k]!;
      k++;
    }
    const stride = c.bw * 8;
    idctBlock(coef, c.plane, row * 8 * stride + col * 8, stride);
  };

  // One component: its own block raster, only the blocks covering the image (T.81 A.2.2).
  // Several: MCUs of h×v blocks per component (A.2.3).
  const single = ns === 1 ? comps[0]! : undefined;
  const unitsX = single ? Math.ceil(Math.ceil((f.width * single.h) / f.hmax) / 8) : f.mcusX;
  const unitsY = single ? Math.ceil(Math.ceil((f.height * single.v) / f.vmax) / 8) : f.mcusY;
  const total = unitsX * unitsY;
  for (let n = 0; n < total; n++) {
    if (restartInterval && n > 0 && n % restartInterval === 0) {
      r.restart();
      for (const c of comps) c.pred = 0;
    }
    const my = Math.floor(n / unitsX);
    const mx = n % unitsX;
    if (single) {
      block(single, my, mx);
      continue;
    }
    for (const c of comps) {
      for (let v = 0; v < c.v; v++) for (let h = 0; h < c.h; h++) block(c, my * c.v + v, mx * c.h + h);
    }
  }
  return r.pos;
}

/** JFIF 1.02 YCbCr → RGB in 16.16 fixed point, per Cb/Cr value (as libjpeg's jdcolor.c tables). */
const FIX = 1 << 16;
/** `out` with out[i] = f(i): a plain loop (TypedArray.from over { length } costs a millisecond at every start). */
function tabulate<T extends Int32Array | Uint8Array | Uint32Array>(out: T, f: (i: number) => number): T {
  for (let i = 0; i < out.length; i++) out[i] = f(i);
  return out;
}
const CR_R = tabulate(new Int32Array(256), (i) => Math.round(1.402 * FIX * (i - 128)));
const CB_B = tabulate(new Int32Array(256), (i) => Math.round(1.772 * FIX * (i - 128)));
const CR_G = tabulate(new Int32Array(256), (i) => -Math.round(0.714136 * FIX * (i - 128)));
const CB_G = tabulate(new Int32Array(256), (i) => -Math.round(0.344136 * FIX * (i - 128)) + FIX / 2);

/** Upsamples chroma (nearest sample) and converts YCbCr → RGB (JFIF 1.02), or copies RGB / grey. */
function toRgba(f: Frame, adobeTransform: number): RgbaImage {
  const { width, height } = f;
  const data = new Uint8Array(width * height * 4);
  const [c0, c1, c2] = f.comps as [Component, Component | undefined, Component | undefined];
  const rgb = f.comps.length === 3 && (adobeTransform === 0 || (c0.id === 0x52 && c1!.id === 0x47 && c2!.id === 0x42));
  const rowOf = (c: Component, y: number) => Math.floor((y * c.v) / f.vmax) * c.bw * 8;
  const colMap = (c: Component) => Uint32Array.from({ length: width }, (_, x) => Math.floor((x * c.h) / f.hmax));
  const m0 = colMap(c0);
  const p0 = c0.plane;
  if (!LITTLE_ENDIAN) return toRgbaBytes(f, rgb);
  // One 32-bit store per pixel (R, G, B, 255 in memory order on a little-endian host).
  const out = new Uint32Array(data.buffer);
  if (!c1 || !c2) {
    for (let y = 0, o = 0; y < height; y++) {
      const r0 = rowOf(c0, y);
      for (let x = 0; x < width; x++, o++) out[o] = GRAY_WORD[p0[r0 + m0[x]!]!]!;
    }
    return { width, height, data };
  }
  const m1 = colMap(c1);
  const m2 = colMap(c2);
  const p1 = c1.plane;
  const p2 = c2.plane;
  for (let y = 0, o = 0; y < height; y++) {
    const r0 = rowOf(c0, y);
    const r1 = rowOf(c1, y);
    const r2 = rowOf(c2, y);
    if (rgb) {
      for (let x = 0; x < width; x++, o++)
        out[o] = (0xff000000 | (p2[r2 + m2[x]!]! << 16) | (p1[r1 + m1[x]!]! << 8) | p0[r0 + m0[x]!]!) >>> 0;
      continue;
    }
    for (let x = 0; x < width; x++, o++) {
      const a = p0[r0 + m0[x]!]! + CLAMP_BIAS;
      const b = p1[r1 + m1[x]!]!;
      const c = p2[r2 + m2[x]!]!;
      const r = CLAMP[a + ((CR_R[c]! + FIX / 2) >> 16)]!;
      const g = CLAMP[a + ((CB_G[b]! + CR_G[c]!) >> 16)]!;
      const bl = CLAMP[a + ((CB_B[b]! + FIX / 2) >> 16)]!;
      out[o] = (0xff000000 | (bl << 16) | (g << 8) | r) >>> 0;
    }
  }
  return { width, height, data };
}

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
/** CLAMP[v + CLAMP_BIAS] = v clamped to 0..255, for v in −CLAMP_BIAS … 511 + CLAMP_BIAS. */
const CLAMP_BIAS = 512;
const CLAMP = tabulate(new Uint8Array(1024 + 512), (i) => Math.max(0, Math.min(255, i - CLAMP_BIAS)));
const GRAY_WORD = tabulate(new Uint32Array(256), (v) => (0xff000000 | (v << 16) | (v << 8) | v) >>> 0);

/** The same conversion byte by byte, for big-endian hosts. */
function toRgbaBytes(f: Frame, rgb: boolean): RgbaImage {
  const { width, height } = f;
  const data = new Uint8Array(width * height * 4);
  const out = new Uint8ClampedArray(data.buffer); // stores clamp to 0..255
  const [c0, c1, c2] = f.comps as [Component, Component | undefined, Component | undefined];
  const rowOf = (c: Component, y: number) => Math.floor((y * c.v) / f.vmax) * c.bw * 8;
  const colMap = (c: Component) => Uint32Array.from({ length: width }, (_, x) => Math.floor((x * c.h) / f.hmax));
  const m0 = colMap(c0);
  const p0 = c0.plane;
  if (!c1 || !c2) {
    for (let y = 0, o = 0; y < height; y++) {
      const r0 = rowOf(c0, y);
      for (let x = 0; x < width; x++, o += 4) out[o] = out[o + 1] = out[o + 2] = p0[r0 + m0[x]!]!;
    }
  } else {
    const m1 = colMap(c1);
    const m2 = colMap(c2);
    const p1 = c1.plane;
    const p2 = c2.plane;
    for (let y = 0, o = 0; y < height; y++) {
      const r0 = rowOf(c0, y);
      const r1 = rowOf(c1, y);
      const r2 = rowOf(c2, y);
      if (rgb) {
        for (let x = 0; x < width; x++, o += 4) {
          out[o] = p0[r0 + m0[x]!]!;
          out[o + 1] = p1[r1 + m1[x]!]!;
          out[o + 2] = p2[r2 + m2[x]!]!;
        }
        continue;
      }
      for (let x = 0; x < width; x++, o += 4) {
        const a = p0[r0 + m0[x]!]!;
        const b = p1[r1 + m1[x]!]!;
        const c = p2[r2 + m2[x]!]!;
        out[o] = a + ((CR_R[c]! + FIX / 2) >> 16);
        out[o + 1] = a + ((CB_G[b]! + CR_G[c]!) >> 16);
        out[o + 2] = a + ((CB_B[b]! + FIX / 2) >> 16);
      }
    }
  }
  for (let i = 3; i < data.length; i += 4) data[i] = 255;
  return { width, height, data };
}
