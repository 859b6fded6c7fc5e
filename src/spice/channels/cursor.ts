// Cursor channel (type 4): the guest pointer shape and position. spice.proto `channel
// CursorChannel` and `struct Cursor` {flags u16, [header {unique u64, type u8, width, height,
// hot_spot_x, hot_spot_y u16}], data[] to the end of the message}; shapes decoded as in spice-gtk
// channel-cursor.c set_cursor. QEMU std VGA / virtio-gpu send ALPHA cursors (spice-protocol.md §3.6).
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
  /** null: no shape (Cursor flags NONE) or a shape type this client does not decode. */
  shape: CursorShape | null;
  x: number;
  y: number;
  visible: boolean;
}

/** Decodes Cursor data of type ALPHA (B,G,R,A words) or MONO (AND mask then XOR mask, 1 bpp MSB first). */
export function decodeCursorImage(type: number, width: number, height: number, data: Uint8Array, maxPixels: number): RgbaImage {
  checkDimensions('cursor', width, height, maxPixels);
  const out = new Uint8Array(width * height * 4);
  if (type === CursorType.ALPHA) {
    if (data.length < width * height * 4) throw new SpiceDecodeError('cursor', 'ALPHA data truncated');
    for (let i = 0; i < width * height * 4; i += 4) {
      out[i] = data[i + 2]!;
      out[i + 1] = data[i + 1]!;
      out[i + 2] = data[i]!;
      out[i + 3] = data[i + 3]!;
    }
  } else if (type === CursorType.MONO) {
    const bpl = (width + 7) >> 3;
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
    throw new SpiceDecodeError('cursor', `type ${nameOf(CursorType, type)} not supported`);
  }
  return { width, height, data: out };
}

export class CursorChannel extends SpiceChannel {
  private readonly _onChange = new Emitter<CursorState>();
  /** Shape, position or visibility changed. */
  readonly onChange: Event<CursorState> = this._onChange.event;
  readonly state: CursorState = { shape: null, x: 0, y: 0, visible: false };
  private readonly _cache = new Map<bigint, CursorShape>();

  constructor(type: number, id: number, transport: Transport, queue: ByteQueue, options: ChannelOptions, private readonly _maxPixels: number) {
    super(type, id, transport, queue, options);
  }

  protected handleMessage(type: number, body: Uint8Array): void {
    const r = this.reader(body, type);
    const s = this.state;
    switch (type) {
      case CursorMsg.INIT:
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
    if (type !== CursorType.ALPHA && type !== CursorType.MONO) {
      this.ignore(CursorMsg.SET);
      return null;
    }
    const shape = { image: decodeCursorImage(type, width, height, r.rest(), this._maxPixels), hotX, hotY };
    if (flags & CursorFlags.CACHE_ME) this._cache.set(unique, shape);
    return shape;
  }

  protected override onClosed(): void {
    this._onChange.dispose();
  }
}
