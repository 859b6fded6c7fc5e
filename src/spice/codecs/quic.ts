// QUIC (image type QUIC): SPICE's lossless predictive coder for photo-like images. Stream =
// little-endian 32-bit words read MSB-first; header words magic "QUIC" (0x43495551), version 0,
// type (1 GRAY, 2 RGB16, 3 RGB24, 4 RGB32, 5 RGBA), width, height (spice-common common/quic.c
// quic_decode_begin). Each channel value is predicted from the left pixel (row 0) or the mean of
// left and above, the residual Golomb-coded with the best code of its context bucket; in rows ≥ 1
// MELCODE runs repeat the left pixel (quic_tmpl.c uncompress_row_seg). The model adapts at
// positions chosen by the wait mask (quic-model.ts). The stream is always top-down: the server
// encodes bottom-up bitmaps in reverse line order (spice server/image-encoders.cpp
// image_encoders_compress_quic, lines_data.reverse).
import { SpiceDecodeError } from '../proto/errors.ts';
import { ChannelModel, FAMILY_5BPC, FAMILY_8BPC, ModelState, WMI_MAX, mask } from './quic-model.ts';
import { checkDimensions, type RgbaImage } from './types.ts';

const QUIC_MAGIC = 0x43495551;
const QuicType = { GRAY: 1, RGB16: 2, RGB24: 3, RGB32: 4, RGBA: 5 } as const;

/** MSB-first bit window over little-endian words (quic.c decode_eatbits / read_io_word). */
class Bits {
  word = 0; // the next 32 bits of the stream
  private _next = 0;
  private _avail = 0;
  private _pos = 0;

  constructor(private readonly _src: Uint8Array) {
    this._next = this.word = this._read();
  }

  private _read(): number {
    const s = this._src;
    const p = this._pos;
    if (p + 4 > s.length) throw new SpiceDecodeError('quic', 'compressed data truncated');
    this._pos = p + 4;
    return (s[p]! | (s[p + 1]! << 8) | (s[p + 2]! << 16) | (s[p + 3]! << 24)) >>> 0;
  }

  eat(len: number): void {
    this.word = (this.word << len) >>> 0;
    const delta = this._avail - len;
    if (delta >= 0) {
      this._avail = delta;
      this.word = (this.word | (this._next >>> delta)) >>> 0;
      return;
    }
    this.word = (this.word | (this._next << -delta)) >>> 0;
    this._next = this._read();
    this._avail = 32 + delta;
    this.word = (this.word | (this._next >>> this._avail)) >>> 0;
  }

  eat32(): number {
    const w = this.word;
    this.eat(16);
    this.eat(16);
    return w;
  }
}

export function decode(src: Uint8Array, maxPixels: number): RgbaImage {
  if (src.length < 24) throw new SpiceDecodeError('quic', `truncated header (${src.length} bytes)`);
  const bits = new Bits(src);
  if (bits.eat32() !== QUIC_MAGIC) throw new SpiceDecodeError('quic', 'bad magic');
  if (bits.eat32() !== 0) throw new SpiceDecodeError('quic', 'bad version');
  const type = bits.eat32();
  const width = bits.eat32();
  const height = bits.eat32();
  if (type !== QuicType.RGB32 && type !== QuicType.RGB24 && type !== QuicType.RGBA && type !== QuicType.RGB16) {
    // GRAY only appears as the alpha plane of JPEG_ALPHA-era images, never as a DRAW image.
    throw new SpiceDecodeError('quic', `unsupported type ${type}`);
  }
  checkDimensions('quic', width, height, maxPixels);
  return new QuicDecoder(bits, width, height, type).run();
}

/** mask(n) for n = 0…32, without a call per use. */
const MASKS = Uint32Array.from({ length: 33 }, (_, n) => mask(n));

/** A word whose bytes are 255 in `planes` (0 R, 1 G, 2 B, 3 A) and 0 elsewhere, in memory order. */
function planeMask(planes: number[]): number {
  const b = new Uint8Array(4);
  for (const p of planes) b[p] = 255;
  return new Uint32Array(b.buffer)[0]!;
}

const RGB_PLANES = planeMask([0, 1, 2]);
const ALPHA_PLANE = planeMask([3]);

class QuicDecoder {
  private readonly _out: Uint8Array;
  /** The same pixels as words: runs compare and copy whole pixels under a plane mask. */
  private readonly _out32: Uint32Array;
  private readonly _rgb: ChannelModel[];
  private readonly _alpha: ChannelModel | null;
  private readonly _rgbState = new ModelState();
  private readonly _alphaState = new ModelState();
  private readonly _bpcMask: number;

  constructor(
    private readonly _bits: Bits,
    private readonly _width: number,
    private readonly _height: number,
    private readonly _type: number,
  ) {
    const family = _type === QuicType.RGB16 ? FAMILY_5BPC : FAMILY_8BPC;
    this._bpcMask = mask(family.bpc);
    this._out = new Uint8Array(_width * _height * 4);
    this._out32 = new Uint32Array(this._out.buffer);
    this._rgb = [0, 1, 2].map(() => new ChannelModel(family, _width));
    this._alpha = _type === QuicType.RGBA ? new ChannelModel(FAMILY_8BPC, _width) : null;
  }

  run(): RgbaImage {
    const { _width: w, _height: h } = this;
    const rowBytes = w * 4;
    const planes = [0, 1, 2];
    for (let row = 0; row < h; row++) {
      const cur = row * rowBytes;
      for (const m of this._rgb) m.corr[0] = row === 0 ? 0 : m.corr[1]!;
      this._row(this._rgb, planes, this._rgbState, cur, row === 0 ? -1 : cur - rowBytes);
      if (this._alpha) {
        this._alpha.corr[0] = row === 0 ? 0 : this._alpha.corr[1]!;
        this._row([this._alpha], [3], this._alphaState, cur, row === 0 ? -1 : cur - rowBytes);
      }
    }
    const out = this._out;
    if (this._type === QuicType.RGB16) {
      // 5-bit values → 8 bits (quic_tmpl.c QUIC_RGB16_TO_32 SET_r: v << 3 | v >> 2)
      for (let i = 0; i < out.length; i += 4)
        for (let c = 0; c < 3; c++) out[i + c] = (out[i + c]! << 3) | (out[i + c]! >> 2);
    }
    if (!this._alpha) for (let i = 3; i < out.length; i += 4) out[i] = 255;
    return { width: w, height: h, data: out };
  }

  /** uncompress_row0 / uncompress_row: splits the row where the wait-mask index steps up. */
  private _row(models: ChannelModel[], planes: number[], st: ModelState, cur: number, prev: number): void {
    let width = this._width;
    let pos = 0;
    while (WMI_MAX > st.wmidx && st.wmileft <= width) {
      if (st.wmileft) {
        this._segment(models, planes, st, cur, prev, pos, pos + st.wmileft);
        width -= st.wmileft;
        pos += st.wmileft;
      }
      st.nextWaitMaskIndex();
    }
    if (width) {
      this._segment(models, planes, st, cur, prev, pos, pos + width);
      if (WMI_MAX > st.wmidx) st.wmileft -= width;
    }
  }

  /** Decodes one residual per plane for pixel i and reconstructs the values. */
  private _pixel(models: ChannelModel[], planes: number[], cur: number, prev: number, i: number): void {
    const out = this._out;
    const bits = this._bits;
    const m5 = this._bpcMask;
    for (let k = 0; k < models.length; k++) {
      const m = models[k]!;
      const f = m.family;
      const corr = m.corr;
      const l = m.bestcode[m.bucketOf[corr[i]! & m.levelMask]!]!;
      const word = bits.word;
      let value: number;
      let cwlen: number;
      if (word > f.notGRprefixmask[l]!) {
        const zeros = Math.clz32(word);
        cwlen = zeros + 1 + l;
        value = (zeros << l) | ((word >>> (32 - cwlen)) & MASKS[l]!);
      } else {
        cwlen = f.notGRcwlen[l]!;
        value = f.nGRcodewords[l]! + ((word >>> (32 - cwlen)) & MASKS[f.notGRsuffixlen[l]!]!);
      }
      value &= 0xff;
      corr[i + 1] = value;
      bits.eat(cwlen);
      const o = cur + i * 4 + planes[k]!;
      const residual = f.xlatL2U[value]!;
      let predicted: number;
      if (prev < 0) predicted = i === 0 ? 0 : out[o - 4]!;
      else if (i === 0) predicted = out[o - cur + prev]!;
      else predicted = (out[o - 4]! + out[o - cur + prev]!) >> 1;
      out[o] = (residual + predicted) & m5;
    }
  }

  private _updateModels(models: ChannelModel[], st: ModelState, i: number): void {
    for (let k = 0; k < models.length; k++) {
      const m = models[k]!;
      m.update(st, m.corr[i]!, m.corr[i + 1]!);
    }
  }

  /** uncompress_row0_seg / uncompress_row_seg over pixels [i, end). */
  private _segment(
    models: ChannelModel[],
    planes: number[],
    st: ModelState,
    cur: number,
    prev: number,
    i: number,
    end: number,
  ): void {
    const waitmask = mask(st.wmidx);
    let stop: number;
    if (i === 0) {
      this._pixel(models, planes, cur, prev, 0);
      if (st.waitcnt) st.waitcnt--;
      else {
        st.waitcnt = st.tabrand() & waitmask;
        this._updateModels(models, st, 0);
      }
      stop = ++i + st.waitcnt;
    } else {
      stop = i + st.waitcnt;
    }
    let runIndex = 0;
    // A run starts where the two pixels above are equal and so are the two to the left (uncompress_row_seg).
    const o32 = this._out32;
    const pm = planes.length === 1 ? ALPHA_PLANE : RGB_PLANES;
    const c32 = cur >> 2;
    const p32 = prev >> 2;
    const runStart = (j: number): boolean =>
      prev >= 0 &&
      runIndex !== j &&
      j > 2 &&
      ((o32[p32 + j - 1]! ^ o32[p32 + j]!) & pm) === 0 &&
      ((o32[c32 + j - 1]! ^ o32[c32 + j - 2]!) & pm) === 0;
    for (;;) {
      let run = false;
      while (stop < end && !run) {
        for (; i <= stop; i++) {
          if (runStart(i)) {
            run = true;
            break;
          }
          this._pixel(models, planes, cur, prev, i);
        }
        if (run) break;
        this._updateModels(models, st, stop);
        stop = i + (st.tabrand() & waitmask);
      }
      if (!run) {
        for (; i < end; i++) {
          if (runStart(i)) {
            run = true;
            break;
          }
          this._pixel(models, planes, cur, prev, i);
        }
        if (!run) {
          st.waitcnt = stop - end;
          return;
        }
      }
      // do_run: repeat the left pixel; residual contexts (corr) keep their stale values.
      st.waitcnt = stop - i;
      runIndex = i;
      const len = this._runLength(st);
      if (len > end - i) throw new SpiceDecodeError('quic', 'run past the end of the row');
      for (const runEnd = i + len; i < runEnd; i++)
        o32[c32 + i] = ((o32[c32 + i]! & ~pm) | (o32[c32 + i - 1]! & pm)) >>> 0;
      if (i === end) return;
      stop = i + st.waitcnt;
    }
  }

  /** decode_state_run: unary hits of melcorder-long runs, then melclen bits of remainder. */
  private _runLength(st: ModelState): number {
    const bits = this._bits;
    let len = 0;
    for (;;) {
      const hits = Math.min(8, Math.clz32((~bits.word >>> 24) << 24)); // leading ones of the top byte
      for (let h = 0; h < hits; h++) {
        len += st.melcorder;
        st.melcUp();
      }
      if (hits !== 8) {
        bits.eat(hits + 1);
        break;
      }
      bits.eat(8);
    }
    if (st.melclen) {
      len += bits.word >>> (32 - st.melclen);
      bits.eat(st.melclen);
    }
    st.melcDown();
    return len;
  }
}
