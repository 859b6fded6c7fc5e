// Bounds-checked little-endian reader over a message body. spice.proto (and the grammar in
// spice-common docs/spice_protocol.txt) has no padding; every multi-byte integer is little-endian
// and a pointer (`Type *field`) is a u32 offset from the start of the message body, 0 = NULL.
import { SpiceProtocolError } from './errors.ts';

export class Reader {
  private readonly _view: DataView;
  pos: number;

  constructor(
    readonly bytes: Uint8Array,
    pos = 0,
    readonly what = 'message',
  ) {
    this._view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = pos;
    if (pos < 0 || pos > bytes.length) this._fail(pos, 0);
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  private _fail(at: number, n: number): never {
    throw new SpiceProtocolError(`${this.what}: read of ${n} bytes at offset ${at} beyond end (${this.bytes.length})`);
  }

  private _take(n: number): number {
    const at = this.pos;
    if (n < 0 || at + n > this.bytes.length) this._fail(at, n);
    this.pos = at + n;
    return at;
  }

  u8(): number {
    return this._view.getUint8(this._take(1));
  }
  u16(): number {
    return this._view.getUint16(this._take(2), true);
  }
  i16(): number {
    return this._view.getInt16(this._take(2), true);
  }
  u32(): number {
    return this._view.getUint32(this._take(4), true);
  }
  i32(): number {
    return this._view.getInt32(this._take(4), true);
  }
  u64(): bigint {
    return this._view.getBigUint64(this._take(8), true);
  }
  /** A u64 that must fit in a JS number (timestamps, serials). */
  u64n(): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new SpiceProtocolError(`${this.what}: u64 ${v} too large`);
    return Number(v);
  }
  /** A view (no copy) of the next n bytes. */
  bytesView(n: number): Uint8Array {
    const at = this._take(n);
    return this.bytes.subarray(at, at + n);
  }
  rest(): Uint8Array {
    return this.bytesView(this.remaining);
  }
  /** A reader positioned at a pointer target (offset from the start of this message body). */
  at(offset: number, what = this.what): Reader {
    if (offset > this.bytes.length) this._fail(offset, 0);
    return new Reader(this.bytes, offset, what);
  }
  /** Reads an array count and checks that `count * itemSize` bytes remain before anyone allocates. */
  count(count: number, itemSize: number): number {
    if (count * itemSize > this.remaining) {
      throw new SpiceProtocolError(
        `${this.what}: ${count} items of ${itemSize} bytes exceed the ${this.remaining} bytes left`,
      );
    }
    return count;
  }
}
