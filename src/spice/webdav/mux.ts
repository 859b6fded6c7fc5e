// spice-webdavd's mux over the org.spice-space.webdav.0 port (phodav bin/spice-webdavd.c; docs in
// /work/shared/notes/spice-devices.md §1): each frame is {connection id i64 LE, n u16 LE, n bytes}. The guest daemon
// picks the id of each TCP connection made to it (127.0.0.1:9843); an unknown id with bytes opens a connection to
// this client's server, n = 0 closes it. Replies carry the same id, at most 65535 bytes per frame. Frames do not
// follow SPICE DATA boundaries: the port's bytes are parsed as a stream.
import { startTimer } from '../timers.ts';
import { BrokenConnection, ByteStream, type ResponseSink } from './http.ts';

export const MUX_HEADER = 10;
export const MUX_MAX_DATA = 65535;
/** The bytes of the replies' frames: header and data fill one port message (PortChannel.write's 64 KiB) exactly,
 * rather than 65535 bytes that the port would cut into a 64 KiB message and a 9-byte one (twice the messages through
 * spice-server, QEMU and the guest's virtio-serial buffers). */
export const MUX_FRAME_DATA = 65536 - MUX_HEADER;

export interface MuxFrame {
  id: bigint;
  data: Uint8Array;
}

export function encodeMuxFrame(id: bigint, data: Uint8Array): Uint8Array {
  if (data.length > MUX_MAX_DATA) throw new RangeError('a mux frame holds at most 65535 bytes');
  const out = new Uint8Array(MUX_HEADER + data.length);
  const v = new DataView(out.buffer);
  v.setBigInt64(0, id, true);
  v.setUint16(8, data.length, true);
  out.set(data, MUX_HEADER);
  return out;
}

/** Cuts the port's byte stream into frames; keeps an incomplete one until the rest arrives. */
export class MuxParser {
  private _pending: Uint8Array[] = [];
  private _size = 0;
  /** Bytes the frame at the head of the pending bytes needs (header, then header + n). */
  private _need = MUX_HEADER;

  push(chunk: Uint8Array): MuxFrame[] {
    if (chunk.length) {
      this._pending.push(chunk);
      this._size += chunk.length;
    }
    if (this._size < this._need) return [];
    // Joined only once a whole frame is there: a stream cut into tiny pieces costs no repeated copies.
    const buf = this._pending.length === 1 ? this._pending[0]! : concat(this._pending, this._size);
    const frames: MuxFrame[] = [];
    let at = 0;
    this._need = MUX_HEADER;
    while (buf.length - at >= MUX_HEADER) {
      const v = new DataView(buf.buffer, buf.byteOffset + at, MUX_HEADER);
      const n = v.getUint16(8, true);
      if (buf.length - at < MUX_HEADER + n) {
        this._need = MUX_HEADER + n;
        break;
      }
      // A copy: the connection may keep the bytes after this chunk's buffer is reused.
      frames.push({ id: v.getBigInt64(0, true), data: buf.slice(at + MUX_HEADER, at + MUX_HEADER + n) });
      at += MUX_HEADER + n;
    }
    const rest = buf.slice(at);
    this._pending = rest.length ? [rest] : [];
    this._size = rest.length;
    return frames;
  }

  reset(): void {
    this._pending = [];
    this._size = 0;
    this._need = MUX_HEADER;
  }
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The port as the mux sees it: bytes out, and how many are still queued toward the server. */
export interface MuxPort {
  write(b: Uint8Array): void;
  buffered(): number;
}

/** Serves one connection: reads its requests from `stream`, answers through `sink`. */
export type ConnectionServer = (stream: ByteStream, sink: ResponseSink, id: bigint) => Promise<void>;

/** Above this many bytes queued toward the server, a response waits before writing more. */
export const PACING_HIGH = 4 * 1024 * 1024;

interface Conn {
  stream: ByteStream;
  open: boolean;
}

export class WebdavMux {
  private readonly _parser = new MuxParser();
  private readonly _conns = new Map<bigint, Conn>();
  /** Connections the guest opened so far. */
  opened = 0;

  constructor(private readonly _port: MuxPort, private readonly _serve: ConnectionServer) {}

  get connections(): number {
    return this._conns.size;
  }

  /** Bytes from the port. */
  data(chunk: Uint8Array): void {
    for (const f of this._parser.push(chunk)) {
      const c = this._conns.get(f.id);
      if (f.data.length === 0) {
        if (c) this._close(f.id, c);
        continue;
      }
      if (c) c.stream.push(f.data);
      else this._open(f.id).stream.push(f.data);
    }
  }

  /** The guest daemon closed the port or the channel ended: every connection is gone. */
  reset(): void {
    this._parser.reset();
    for (const [id, c] of this._conns) this._close(id, c);
  }

  private _open(id: bigint): Conn {
    const c: Conn = { stream: new ByteStream(), open: true };
    this._conns.set(id, c);
    this.opened++;
    const sink: ResponseSink = {
      write: (b) => {
        if (!c.open) return;
        for (let at = 0; at < b.length; at += MUX_FRAME_DATA)
          this._port.write(encodeMuxFrame(id, b.subarray(at, at + MUX_FRAME_DATA)));
      },
      drained: () => this._drained(c),
      get closed() {
        return !c.open;
      },
    };
    void this._serve(c.stream, sink, id).catch(() => undefined);
    return c;
  }

  private _close(id: bigint, c: Conn): void {
    c.open = false;
    c.stream.end();
    this._conns.delete(id);
  }

  private async _drained(c: Conn): Promise<void> {
    while (c.open && this._port.buffered() > PACING_HIGH) await new Promise<void>((r) => startTimer(2, r));
    if (!c.open) throw new BrokenConnection('the guest closed the connection');
  }
}
