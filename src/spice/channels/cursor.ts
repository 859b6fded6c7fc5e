// Cursor channel (type 4): the guest pointer shape and position. spice.proto `channel
// CursorChannel` and `struct Cursor` {flags u16, [header {unique u64, type u8, width, height,
// hot_spot_x, hot_spot_y u16}], data[] to the end of the message}; shapes decoded as in spice-gtk
// channel-cursor.c set_cursor; messages in docs/spice-protocol.md §3.7. QEMU std VGA / virtio-gpu and
// the Linux qxl driver send ALPHA cursors (§3.6); MONO and COLOR come from Windows guest drivers. The
// shape cache follows the server: CACHE_ME stores, FROM_CACHE reuses, INVAL_ONE / INVAL_ALL / RESET / INIT empty it.
import { SpiceChannel } from '../channel.ts';
import type { RgbaImage } from '../codecs/types.ts';
import { checkDimensions } from '../codecs/types.ts';
import { Emitter, type Event } from '../emitter.ts';
import type { ChannelOptions } from '../channel.ts';
import { CursorFlags, CursorMsg, CursorType, nameOf } from '../proto/constants.ts';
import { SpiceDecodeError, SpiceProtocolError } from '../proto/errors.ts';
import type { Reader } from '../proto/reader.ts';
import type { ByteQueue, Transport } from '../transport.ts';

export const CURSOR_CLIENT_CAPS: number[] = [];

export interface CursorShape {
  image: RgbaImage;
  hotX: number;
  hotY: number;
}

export interface CursorState {
  /** null: no shape (Cursor flags NONE). */
  shape: CursorShape | null;
  x: number;
  y: number;
  visible: boolean;
}

/** Bytes per row of the colour part and palette entries of the COLOR cursor types. */
const COLOR_LAYOUT: Record<number, { rowBytes: (w: number) => number; palette: number }> = {
  [CursorType.COLOR4]: { rowBytes: (w) => (w + 1) >> 1, palette: 16 },
  [CursorType.COLOR8]: { rowBytes: (w) => w, palette: 256 },
  [CursorType.COLOR16]: { rowBytes: (w) => w * 2, palette: 0 },
  [CursorType.COLOR24]: { rowBytes: (w) => w * 3, palette: 0 },
  [CursorType.COLOR32]: { rowBytes: (w) => w * 4, palette: 0 },
};

function expand5(v: number): number {
  return (v << 3) | (v >> 2);
}

/**
 * Decodes Cursor data. ALPHA: B,G,R,A words. MONO: AND mask then XOR mask, 1 bpp MSB first, rows
 * padded to a byte. COLOR4…COLOR32 (Windows colour cursors, the qxl XPDM driver's layout; sizes as
 * spice-server's red-parse-qxl and spice-gtk expect): the colour rows (COLOR4 two pixels a byte,
 * high nibble first; COLOR8 palette indices; COLOR16 x1r5g5b5 LE; COLOR24 B,G,R; COLOR32 B,G,R,x),
 * then for COLOR4/8 a palette of 16/256 u32 0x00RRGGBB, then the AND mask (1 bpp MSB first, rows
 * padded to a byte).
 * Windows semantics: AND 0 → the colour; AND 1 with colour 0 → transparent; AND 1 with another
 * colour inverts the screen, which an image cannot show: drawn opaque black, as for MONO.
 */
export function decodeCursorImage(
  type: number,
  width: number,
  height: number,
  data: Uint8Array,
  maxPixels: number,
): RgbaImage {
  checkDimensions('cursor', width, height, maxPixels);
  const out = new Uint8Array(width * height * 4);
  const bpl = (width + 7) >> 3;
  if (type === CursorType.ALPHA) {
    if (data.length < width * height * 4) throw new SpiceDecodeError('cursor', 'ALPHA data truncated');
    for (let i = 0; i < width * height * 4; i += 4) {
      out[i] = data[i + 2]!;
      out[i + 1] = data[i + 1]!;
      out[i + 2] = data[i]!;
      out[i + 3] = data[i + 3]!;
    }
  } else if (type === CursorType.MONO) {
    if (data.length < 2 * bpl * height) throw new SpiceDecodeError('cursor', 'MONO data truncated');
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const bit = 0x80 >> (x & 7);
        const and = data[y * bpl + (x >> 3)]! & bit;
        const xor = data[(height + y) * bpl + (x >> 3)]! & bit;
        const o = (y * width + x) * 4;
        // AND=1,XOR=0 transparent; AND=0 → XOR picks white/black; AND=1,XOR=1 (invert) shown black.
        const v = !and && xor ? 255 : 0;
        out[o] = out[o + 1] = out[o + 2] = v;
        out[o + 3] = and && !xor ? 0 : 255;
      }
    }
  } else {
    const layout = COLOR_LAYOUT[type];
    if (!layout) throw new SpiceDecodeError('cursor', `type ${nameOf(CursorType, type)} not supported`);
    const rowBytes = layout.rowBytes(width);
    const palAt = rowBytes * height;
    const maskAt = palAt + layout.palette * 4;
    if (data.length < maskAt + bpl * height)
      throw new SpiceDecodeError('cursor', `${nameOf(CursorType, type)} data truncated`);
    const pal = (i: number): number =>
      data[palAt + i * 4]! | (data[palAt + i * 4 + 1]! << 8) | (data[palAt + i * 4 + 2]! << 16);
    for (let y = 0; y < height; y++) {
      const row = y * rowBytes;
      for (let x = 0; x < width; x++) {
        let r: number, g: number, b: number;
        if (type === CursorType.COLOR4 || type === CursorType.COLOR8) {
          const idx = type === CursorType.COLOR8 ? data[row + x]! : (data[row + (x >> 1)]! >> (x & 1 ? 0 : 4)) & 15;
          const c = pal(idx);
          [r, g, b] = [(c >> 16) & 255, (c >> 8) & 255, c & 255];
        } else if (type === CursorType.COLOR16) {
          const v = data[row + 2 * x]! | (data[row + 2 * x + 1]! << 8);
          [r, g, b] = [expand5((v >> 10) & 31), expand5((v >> 5) & 31), expand5(v & 31)];
        } else {
          const o = row + x * (type === CursorType.COLOR24 ? 3 : 4);
          [r, g, b] = [data[o + 2]!, data[o + 1]!, data[o]!];
        }
        const and = (data[maskAt + y * bpl + (x >> 3)]! >> (7 - (x & 7))) & 1;
        const o = (y * width + x) * 4;
        const colour = r | g | b;
        if (!and) out.set([r, g, b, 255], o);
        else if (colour) out.set([0, 0, 0, 255], o);
        // AND 1, colour 0: transparent (zeros)
      }
    }
  }
  return { width, height, data: out };
}

/**
 * The server evicts from its cursor cache with INVAL_ONE and keeps at most 256 shapes per client
 * (spice-server CLIENT_CURSOR_CACHE_SIZE); this client keeps at most that many too, oldest first out.
 */
const CURSOR_CACHE_ENTRIES = 256;

export class CursorChannel extends SpiceChannel {
  private readonly _onChange = new Emitter<CursorState>();
  /** Shape, position or visibility changed. */
  readonly onChange: Event<CursorState> = this._onChange.event;
  readonly state: CursorState = { shape: null, x: 0, y: 0, visible: false };
  private readonly _cache = new Map<bigint, CursorShape>();

  constructor(
    type: number,
    id: number,
    transport: Transport,
    queue: ByteQueue,
    options: ChannelOptions,
    private readonly _maxPixels: number,
  ) {
    super(type, id, transport, queue, options);
  }

  protected handleMessage(type: number, body: Uint8Array): void {
    const r = this.reader(body, type);
    const s = this.state;
    switch (type) {
      case CursorMsg.INIT:
        this._cache.clear(); // a new cursor channel state (spice-gtk cursor_handle_init)
        s.x = r.i16();
        s.y = r.i16();
        r.u16(); // trail_length
        r.u16(); // trail_frequency
        s.visible = r.u8() !== 0;
        s.shape = this._readCursor(r);
        break;
      case CursorMsg.SET:
        s.x = r.i16();
        s.y = r.i16();
        s.visible = r.u8() !== 0;
        s.shape = this._readCursor(r);
        break;
      case CursorMsg.MOVE:
        s.x = r.i16();
        s.y = r.i16();
        s.visible = true;
        break;
      case CursorMsg.HIDE:
        s.visible = false;
        break;
      case CursorMsg.RESET:
        this._cache.clear();
        s.visible = false;
        s.shape = null;
        break;
      case CursorMsg.INVAL_ONE:
        this._cache.delete(r.u64());
        return;
      case CursorMsg.INVAL_ALL:
        this._cache.clear();
        return;
      default:
        this.ignore(type); // TRAIL: no trails drawn
        return;
    }
    this._onChange.fire(s);
  }

  private _readCursor(r: Reader): CursorShape | null {
    const flags = r.u16();
    if (flags & CursorFlags.NONE) return null;
    const unique = r.u64();
    const type = r.u8();
    const width = r.u16();
    const height = r.u16();
    const hotX = r.u16();
    const hotY = r.u16();
    if (flags & CursorFlags.FROM_CACHE) {
      const cached = this._cache.get(unique);
      if (!cached) throw new SpiceProtocolError(`cursor ${unique} not in cache`);
      return cached;
    }
    const shape = { image: decodeCursorImage(type, width, height, r.rest(), this._maxPixels), hotX, hotY };
    if (flags & CursorFlags.CACHE_ME) {
      this._cache.delete(unique);
      this._cache.set(unique, shape);
      if (this._cache.size > CURSOR_CACHE_ENTRIES) this._cache.delete(this._cache.keys().next().value!);
    }
    return shape;
  }

  protected override onClosed(): void {
    this._onChange.dispose();
  }
}
