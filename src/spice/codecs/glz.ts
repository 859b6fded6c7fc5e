// GLZ (image type GLZ_RGB): LZ whose back references may point into earlier images of a shared
// dictionary window. Format from spice-gtk src/decode-glz.c (decode_header, window handling) and
// decode-glz-tmpl.c (reference encoding). Header, big-endian:
//   magic "LZ  ", version 0x00010001, u8 type | top_down << 4, width, height, stride,
//   id u64, win_head_dist u32 (id - win_head_dist = oldest image the server may still reference).
// Reference: len = ctrl>>5 (7 ⇒ extended), pixel_flag = bit 4, ofs = ctrl & 15, then
//   ofs += byte << 4; byte b: image_flag = b >> 6 (count of image-distance bytes);
//   short form (pixel_flag 0): dist = b & 63 + next bytes << (6 + 8i);
//   long form: ofs += (b & 31) << 12, dist = next bytes << 8i, and if b bit 5: ofs += byte << 17.
//   dist 0 = inside this image (ofs biased by 1); otherwise pixel ofs of image id - dist.
// Lengths are biased by 0 for 32-bit pixels, 1 for 16-bit, 2 for the alpha pass and palette bytes.
// Palettized types (PLT1_LE/BE, PLT4_LE/BE, PLT8) count in bytes of `stride` per row: every byte
// holds 8, 2 or 1 pixels, lengths and offsets are multiplied by that (spice-gtk decode-glz-tmpl.c
// CAST_PLT_DISTANCE), literals go through the palette at once, and the window keeps the decoded
// colours of the whole stride (gross pixels), so references across images copy colours. spice-server
// never sends palettized GLZ (GLZ is only chosen for RGB bitmaps, dcc.cpp get_compression_for_bitmap)
// and GLZ_RGB images carry no palette, so this path needs the caller to supply one.
import { SpiceDecodeError } from '../proto/errors.ts';
import { LZ_MAGIC, PLT_PIXELS_PER_BYTE, readBe32 } from './lz.ts';
import { LzType, copyUnits, literals, truncated } from './lz-core.ts';
import { checkDimensions, markOpaque, type RgbaImage } from './types.ts';

const HEADER_BYTES = 33;
/** The alpha byte of an RGBA pixel read as a 32-bit word in the platform's byte order. */
const ALPHA_WORD = new Uint32Array(Uint8Array.of(0, 0, 0, 255).buffer)[0]!;

interface WindowImage {
  /** RGBA pixels in stream order (bottom-up when !top_down), alpha bytes as decoded. */
  pixels: Uint8Array;
  count: number;
  headDist: number;
}

/**
 * The decoder half of the GLZ dictionary, shared by all display channels of a session. The server
 * sizes its window by DISPLAY_INIT glz_dictionary_window_size; images older than the newest
 * contiguous image's `id - win_head_dist` are released. `maxPixels` bounds memory whatever the server does.
 */
export class GlzWindow {
  private readonly _images = new Map<number, WindowImage>();
  private _tail: number | undefined; // smallest id not yet received, counted from the first image
  private _pixels = 0;
  /** Back references resolved into earlier images (proof that the dictionary is in use). */
  crossImageRefs = 0;

  constructor(readonly maxPixels: number) {}

  get size(): number {
    return this._images.size;
  }

  get(id: number): WindowImage | undefined {
    return this._images.get(id);
  }

  add(id: number, img: WindowImage): void {
    const old = this._images.get(id);
    if (old) this._pixels -= old.count;
    this._images.set(id, img);
    this._pixels += img.count;
    this._tail ??= id;
    while (this._images.has(this._tail)) this._tail++;
    const newest = this._images.get(this._tail - 1);
    if (newest) this._releaseBelow(this._tail - 1 - newest.headDist);
    while (this._pixels > this.maxPixels && this._images.size > 1)
      this._releaseBelow(Math.min(...this._images.keys()) + 1);
  }

  clear(): void {
    this._images.clear();
    this._tail = undefined;
    this._pixels = 0;
  }

  private _releaseBelow(oldest: number): void {
    for (const [id, img] of this._images) {
      if (id < oldest) {
        this._images.delete(id);
        this._pixels -= img.count;
      }
    }
  }
}

function readBe64(b: Uint8Array, at: number): number {
  const hi = readBe32(b, at);
  if (hi >= 1 << 21) throw new SpiceDecodeError('glz', 'image id beyond 2^53');
  return hi * 2 ** 32 + readBe32(b, at + 4);
}

export function decode(src: Uint8Array, dict: GlzWindow, maxPixels: number, palette?: Uint32Array): RgbaImage {
  if (src.length < HEADER_BYTES) truncated('glz');
  if (readBe32(src, 0) !== LZ_MAGIC) throw new SpiceDecodeError('glz', 'bad magic');
  if (readBe32(src, 4) !== 0x00010001) throw new SpiceDecodeError('glz', 'bad version');
  const type = src[8]! & 0x0f;
  const topDown = src[8]! >> 4 !== 0;
  const width = readBe32(src, 9);
  const height = readBe32(src, 13);
  const stride = readBe32(src, 17);
  const id = readBe64(src, 21);
  const headDist = readBe32(src, 29);
  const ppb = PLT_PIXELS_PER_BYTE[type];
  if (ppb !== undefined) {
    if (!palette) throw new SpiceDecodeError('glz', 'palettized GLZ without a palette');
    checkDimensions('glz', width, height, maxPixels);
    const rowPixels = stride * ppb;
    if (rowPixels < width || stride > width + 1)
      throw new SpiceDecodeError('glz', `bad stride ${stride} for width ${width}`);
    checkDimensions('glz', rowPixels, height, maxPixels);
    const count = rowPixels * height;
    const pixels = new Uint8Array(count * 4);
    decodePalettePass(src, HEADER_BYTES, pixels, count, id, type, ppb, palette, dict);
    dict.add(id, { pixels, count, headDist });
    return toOutput(pixels, width, height, topDown, false, rowPixels);
  }
  if (type !== LzType.RGB32 && type !== LzType.RGB24 && type !== LzType.RGBA && type !== LzType.RGB16) {
    throw new SpiceDecodeError('glz', `unsupported type ${type}`);
  }
  checkDimensions('glz', width, height, maxPixels);
  const count = width * height;
  const pixels = new Uint8Array(count * 4);
  let pos = HEADER_BYTES;
  pos = decodePass(src, pos, pixels, count, id, type === LzType.RGB16 ? LzType.RGB16 : LzType.RGB32, dict);
  if (type === LzType.RGBA) decodePass(src, pos, pixels, count, id, LzType.XXXA, dict);
  dict.add(id, { pixels, count, headDist });
  return toOutput(pixels, width, height, topDown, type === LzType.RGBA, width);
}

/** A back reference: length and pixel offset as coded, and the image distance (0 = this image). */
interface GlzRef {
  len: number;
  ofs: number;
  dist: number;
}

function readRef(ctrl: number, byte: () => number): GlzRef {
  let len = ctrl >> 5;
  const longOfs = (ctrl >> 4) & 1;
  let ofs = ctrl & 0x0f;
  if (len === 7) {
    let code: number;
    do {
      code = byte();
      len += code;
    } while (code === 255);
  }
  ofs += byte() << 4;
  const b = byte();
  const imageFlag = (b >> 6) & 3;
  let dist = 0;
  if (!longOfs) {
    dist = b & 0x3f;
    for (let i = 0; i < imageFlag; i++) dist += byte() * 2 ** (6 + 8 * i);
  } else {
    ofs += (b & 0x1f) << 12;
    for (let i = 0; i < imageFlag; i++) dist += byte() * 2 ** (8 * i);
    if ((b >> 5) & 1) ofs += byte() << 17;
  }
  return { len, ofs, dist };
}

/** The palettized pass: byte units expanded to `ppb` RGBA pixels each. */
function decodePalettePass(
  src: Uint8Array,
  ip: number,
  out: Uint8Array,
  n: number,
  id: number,
  type: number,
  ppb: number,
  pal: Uint32Array,
  dict: GlzWindow,
): void {
  const byte = (): number => {
    if (ip >= src.length) truncated('glz');
    return src[ip++]!;
  };
  const bits = 8 / ppb;
  const lsbFirst = type === LzType.PLT1_LE || type === LzType.PLT4_LE;
  const put = (o: number, rgb: number): void => {
    out[o * 4] = (rgb >>> 16) & 255;
    out[o * 4 + 1] = (rgb >>> 8) & 255;
    out[o * 4 + 2] = rgb & 255;
    out[o * 4 + 3] = 255;
  };
  let op = 0;
  while (op < n) {
    const ctrl = byte();
    if (ctrl < 32) {
      if (op + (ctrl + 1) * ppb > n) throw new SpiceDecodeError('glz', 'literal run past the end of the image');
      for (let k = 0; k <= ctrl; k++) {
        const v = byte();
        for (let i = 0; i < ppb; i++, op++) {
          const shift = lsbFirst ? i * bits : 8 - bits - i * bits;
          let idx = (v >> shift) & ((1 << bits) - 1);
          // 4-bit indices wrap modulo the palette size (decode-glz-tmpl.c); 1-bit ones take entries 0 and 1.
          if (bits === 4 && pal.length) idx %= pal.length;
          put(op, pal[idx] ?? 0);
        }
      }
      continue;
    }
    const ref = readRef(ctrl, byte);
    const len = (ref.len + 2) * ppb;
    if (op + len > n) throw new SpiceDecodeError('glz', 'reference past the end of the image');
    if (ref.dist === 0) {
      const ofs = (ref.ofs + 1) * ppb;
      if (ofs > op) throw new SpiceDecodeError('glz', `reference before the image start (distance ${ofs})`);
      copyUnits(out, op - ofs, op, len, LzType.RGB32);
    } else {
      const img = dict.get(id - ref.dist);
      if (!img) throw new SpiceDecodeError('glz', `image ${id - ref.dist} not in the dictionary window`);
      const ofs = ref.ofs * ppb;
      if (ofs + len > img.count) throw new SpiceDecodeError('glz', 'reference past the end of a dictionary image');
      copyFrom(img.pixels, ofs, out, op, len, LzType.RGB32);
      dict.crossImageRefs++;
    }
    op += len;
  }
}

function decodePass(
  src: Uint8Array,
  ip: number,
  out: Uint8Array,
  n: number,
  id: number,
  mode: number,
  dict: GlzWindow,
): number {
  const end = src.length;
  const bias = mode === LzType.RGB32 ? 0 : mode === LzType.RGB16 ? 1 : 2;
  const byte = (): number => {
    if (ip >= end) truncated('glz');
    return src[ip++]!;
  };
  let op = 0;
  while (op < n) {
    const ctrl = byte();
    if (ctrl < 32) {
      const count = ctrl + 1;
      if (op + count > n) throw new SpiceDecodeError('glz', 'literal run past the end of the image');
      ip = literals(src, ip, out, op, count, mode, 'glz');
      op += count;
      continue;
    }
    const ref = readRef(ctrl, byte);
    let len = ref.len;
    let ofs = ref.ofs;
    const dist = ref.dist;
    len += bias;
    if (op + len > n) throw new SpiceDecodeError('glz', 'reference past the end of the image');
    if (dist === 0) {
      ofs += 1;
      if (ofs > op) throw new SpiceDecodeError('glz', `reference before the image start (distance ${ofs})`);
      copyUnits(out, op - ofs, op, len, mode);
    } else {
      const img = dict.get(id - dist);
      if (!img) throw new SpiceDecodeError('glz', `image ${id - dist} not in the dictionary window`);
      if (ofs + len > img.count) throw new SpiceDecodeError('glz', 'reference past the end of a dictionary image');
      copyFrom(img.pixels, ofs, out, op, len, mode);
      dict.crossImageRefs++;
    }
    op += len;
  }
  return ip;
}

function copyFrom(from: Uint8Array, at: number, out: Uint8Array, op: number, len: number, mode: number): void {
  if (mode === LzType.XXXA) {
    for (let i = 0; i < len; i++) out[(op + i) * 4 + 3] = from[(at + i) * 4 + 3]!;
  } else {
    out.set(from.subarray(at * 4, (at + len) * 4), op * 4);
  }
}

/** Top-down RGBA of `width` columns out of rows of `rowPixels` decoded pixels. */
function toOutput(
  pixels: Uint8Array,
  width: number,
  height: number,
  topDown: boolean,
  alpha: boolean,
  rowPixels: number,
): RgbaImage {
  const stride = width * 4;
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    const s = (topDown ? y : height - 1 - y) * rowPixels * 4;
    data.set(pixels.subarray(s, s + stride), y * stride);
  }
  const img = { width, height, data };
  if (!alpha) {
    // Literals are opaque already; a reference into an RGBA image of the window may bring other alpha.
    const words = new Uint32Array(data.buffer, 0, width * height);
    for (let i = 0; i < words.length; i++) words[i] = (words[i]! | ALPHA_WORD) >>> 0;
    markOpaque(img);
  }
  return img;
}
