// Growable little-endian writer for client messages (spice.proto: packed, little-endian).
export class Writer {
  private _buf: Uint8Array;
  private _view: DataView;
  private _len = 0;

  constructor(capacity = 64) {
    this._buf = new Uint8Array(capacity);
    this._view = new DataView(this._buf.buffer);
  }

  get length(): number {
    return this._len;
  }

  /** Reserves n bytes and returns their offset; may replace _buf and _view, so call it before using them. */
  private _grow(n: number): number {
    const at = this._len;
    if (at + n > this._buf.length) {
      const next = new Uint8Array(Math.max(this._buf.length * 2, at + n));
      next.set(this._buf.subarray(0, at));
      this._buf = next;
      this._view = new DataView(next.buffer);
    }
    this._len = at + n;
    return at;
  }

  u8(v: number): this {
    const at = this._grow(1);
    this._view.setUint8(at, v);
    return this;
  }
  u16(v: number): this {
    const at = this._grow(2);
    this._view.setUint16(at, v, true);
    return this;
  }
  u32(v: number): this {
    const at = this._grow(4);
    this._view.setUint32(at, v >>> 0, true);
    return this;
  }
  i32(v: number): this {
    const at = this._grow(4);
    this._view.setInt32(at, v, true);
    return this;
  }
  u64(v: bigint | number): this {
    const at = this._grow(8);
    this._view.setBigUint64(at, BigInt(v), true);
    return this;
  }
  i64(v: bigint | number): this {
    const at = this._grow(8);
    this._view.setBigInt64(at, BigInt(v), true);
    return this;
  }
  bytes(b: Uint8Array): this {
    const at = this._grow(b.length);
    this._buf.set(b, at);
    return this;
  }
  finish(): Uint8Array {
    return this._buf.slice(0, this._len);
  }
}
