// Drives the WebDAV share the way spice-webdavd does: guest connections as mux frames on a fake port, raw HTTP in,
// responses parsed from the frames the share writes back.
import { setImmediate as tick } from 'node:timers/promises';
import {
  MuxParser, WebdavMux, WebdavServer, encodeMuxFrame, type DavFs, type SpecialHandler,
} from './exports.ts';

export interface Response {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
  /** The body's chunked framing broke (a cancelled drop). */
  broken?: boolean;
}

export class Guest {
  readonly server: WebdavServer;
  readonly mux: WebdavMux;
  private readonly _parser = new MuxParser();
  private readonly _in = new Map<bigint, Buffer>();
  /** Bytes queued toward the server, as the fake transport reports them. */
  buffered = 0;

  constructor(fs: DavFs, special?: SpecialHandler) {
    this.server = new WebdavServer(fs);
    this.server.special = special;
    this.mux = new WebdavMux(
      {
        write: (b) => {
          for (const f of this._parser.push(b))
            this._in.set(f.id, Buffer.concat([this._in.get(f.id) ?? Buffer.alloc(0), f.data]));
        },
        buffered: () => this.buffered,
      },
      (s, sink) => this.server.serveConnection(s, sink),
    );
  }

  /** Sends bytes on connection `id`, cut into frames of at most `piece` bytes. */
  send(id: bigint, data: string | Uint8Array, piece = 65535): void {
    const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let at = 0; at < b.length; at += piece) this.mux.data(encodeMuxFrame(id, b.subarray(at, at + piece)));
  }

  close(id: bigint): void {
    this.mux.data(encodeMuxFrame(id, new Uint8Array(0)));
  }

  /** Waits for the next complete response on `id` and takes it. */
  async response(id: bigint, head = false, waitMs = 10_000): Promise<Response> {
    // Bounded by time, not by turns of the event loop: the server's file system calls run on libuv's threads, which a
    // loaded machine (the unit tier shares its process) slows down while the loop spins on.
    for (const end = Date.now() + waitMs; Date.now() < end;) {
      const r = parseResponse(this._in.get(id) ?? Buffer.alloc(0), head);
      if (r) {
        this._in.set(id, (this._in.get(id) ?? Buffer.alloc(0)).subarray(r.used));
        return r.res;
      }
      await tick();
    }
    throw new Error(`no complete response on connection ${id}: ${String(this._in.get(id) ?? '').slice(0, 200)}`);
  }

  async request(
    id: bigint, method: string, path: string, headers: Record<string, string> = {}, body?: string | Uint8Array,
  ): Promise<Response> {
    const b = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
    let h = `${method} ${path} HTTP/1.1\r\nHost: localhost:9843\r\n`;
    if (body !== undefined) h += `Content-Length: ${b.length}\r\n`;
    for (const [k, v] of Object.entries(headers)) h += `${k}: ${v}\r\n`;
    this.send(id, Buffer.concat([Buffer.from(h + '\r\n'), b]));
    return this.response(id, method === 'HEAD');
  }
}

function parseResponse(buf: Buffer, head: boolean): { res: Response; used: number } | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0]!)![1]);
  const headers = new Map(lines.slice(1).map((l) => {
    const c = l.indexOf(':');
    return [l.slice(0, c).toLowerCase(), l.slice(c + 1).trim()] as [string, string];
  }));
  let at = end + 4;
  if (headers.get('transfer-encoding') === 'chunked') {
    const parts: Buffer[] = [];
    for (;;) {
      const nl = buf.indexOf('\r\n', at);
      if (nl < 0) return undefined;
      const line = buf.subarray(at, nl).toString('latin1');
      if (!/^[0-9a-f]+$/i.test(line)) {
        if (line === '') { at = nl + 2; continue; }
        return { res: { status, headers, body: Buffer.concat(parts), broken: true }, used: buf.length };
      }
      const n = parseInt(line, 16);
      if (buf.length < nl + 2 + n + 2) return undefined;
      if (n === 0) return { res: { status, headers, body: Buffer.concat(parts) }, used: nl + 4 };
      parts.push(buf.subarray(nl + 2, nl + 2 + n));
      at = nl + 2 + n + 2;
    }
  }
  const len = head ? 0 : Number(headers.get('content-length') ?? 0);
  if (buf.length < at + len) return undefined;
  return { res: { status, headers, body: buf.subarray(at, at + len) }, used: at + len };
}
