// The byte transport is injected: a WebSocket in the browser, a unix/TCP socket in Node
// (src/spice-node/transport.ts). One transport carries one SPICE channel (docs/spice-protocol.md §3.2).
import { SpiceProtocolError } from './proto/errors.ts';

export interface TransportHandler {
  data(chunk: Uint8Array): void;
  /** The peer closed or the connection failed; `error` is set on failure. */
  closed(error?: Error): void;
}

export interface Transport {
  /** Starts delivering bytes to `handler`. Called once. */
  start(handler: TransportHandler): void;
  write(bytes: Uint8Array): void;
  close(): void;
  /** Bytes written but not yet handed to the network (pacing of large writes, e.g. WebDAV responses). */
  bufferedAmount?(): number;
}

/** Opens a transport for one channel; the core calls it once per channel. */
export type Connector = (channelType: number, channelId: number) => Promise<Transport>;

/** The peer or the local side closed the connection before an expected read completed. */
export class SpiceConnectionClosed extends Error {
  override readonly name = 'SpiceConnectionClosed';
}

/**
 * Buffers pushed chunks and serves exact-length reads. SPICE messages are a byte stream cut
 * arbitrarily into chunks (TCP segments, WebSocket frames — server/websocket.c), so framing code
 * asks for `n` bytes and waits.
 */
export class ByteQueue implements TransportHandler {
  private _chunks: Uint8Array[] = [];
  private _head = 0; // read offset into _chunks[0]
  private _size = 0;
  private _want = 0;
  private _waiter: { resolve: (b: Uint8Array) => void; reject: (e: Error) => void } | null = null;
  private _closed: Error | null = null;

  data(chunk: Uint8Array): void {
    if (this._closed || chunk.length === 0) return;
    this._chunks.push(chunk);
    this._size += chunk.length;
    this._wake();
  }

  closed(error?: Error): void {
    if (this._closed) return;
    this._closed = error ?? new SpiceConnectionClosed('connection closed');
    const w = this._waiter;
    this._waiter = null;
    w?.reject(this._closed);
  }

  /** Resolves with exactly `n` bytes. Only one read may be pending. */
  read(n: number): Promise<Uint8Array> {
    if (this._waiter) throw new SpiceProtocolError('concurrent read');
    if (this._size >= n) return Promise.resolve(this._take(n));
    if (this._closed) return Promise.reject(this._closed);
    return new Promise((resolve, reject) => {
      this._want = n;
      this._waiter = { resolve, reject };
    });
  }

  private _wake(): void {
    if (this._waiter && this._size >= this._want) {
      const w = this._waiter;
      this._waiter = null;
      w.resolve(this._take(this._want));
    }
  }

  private _take(n: number): Uint8Array {
    this._size -= n;
    const first = this._chunks[0];
    if (first && first.length - this._head >= n) {
      const out = first.subarray(this._head, this._head + n);
      this._head += n;
      if (this._head === first.length) {
        this._chunks.shift();
        this._head = 0;
      }
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this._chunks[0]!;
      const k = Math.min(n - filled, c.length - this._head);
      out.set(c.subarray(this._head, this._head + k), filled);
      filled += k;
      this._head += k;
      if (this._head === c.length) {
        this._chunks.shift();
        this._head = 0;
      }
    }
    return out;
  }
}
