// HTTP/1.1 on one guest TCP connection relayed by spice-webdavd (RFC 9112): requests are parsed from the byte
// stream as it comes (a request may span many mux frames, a frame may hold several requests), bodies are read
// piece by piece (Content-Length or chunked), never whole. Responses are written through the connection's sink.
import { decodeUtf8, encodeUtf8 } from '../proto/utf8.ts';

/** Largest request head (request line and headers) accepted. */
export const MAX_HEAD = 16 * 1024;

export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** A response was cut short: the connection cannot carry another one. */
export class BrokenConnection extends Error {
  override readonly name = 'BrokenConnection';
}

/** Bytes pushed by the mux, pulled by the request loop. */
export class ByteStream {
  private _chunks: Uint8Array[] = [];
  private _size = 0;
  private _ended = false;
  private _waiter: (() => void) | undefined;

  get size(): number {
    return this._size;
  }

  push(b: Uint8Array): void {
    if (this._ended || b.length === 0) return;
    this._chunks.push(b);
    this._size += b.length;
    this._wake();
  }

  end(): void {
    this._ended = true;
    this._wake();
  }

  get ended(): boolean {
    return this._ended && this._size === 0;
  }

  /** Up to `max` bytes as soon as any are there; null at the end of the stream. */
  async read(max: number): Promise<Uint8Array | null> {
    while (this._size === 0) {
      if (this._ended) return null;
      await new Promise<void>((r) => (this._waiter = r));
    }
    return this._take(Math.min(max, this._size));
  }

  /** Exactly `n` bytes, or null if the stream ends first. */
  async readExact(n: number): Promise<Uint8Array | null> {
    while (this._size < n) {
      if (this._ended) return null;
      await new Promise<void>((r) => (this._waiter = r));
    }
    return this._take(n);
  }

  /** Bytes up to and including `delim`; null if the stream ends first; HttpError past `limit` bytes. */
  async readUntil(delim: Uint8Array, limit: number, status = 431): Promise<Uint8Array | null> {
    for (;;) {
      const at = this._find(delim);
      if (at >= 0) return this._take(at + delim.length);
      if (this._size > limit) throw new HttpError(status, 'request head too large');
      if (this._ended) return null;
      await new Promise<void>((r) => (this._waiter = r));
    }
  }

  private _wake(): void {
    const w = this._waiter;
    this._waiter = undefined;
    w?.();
  }

  private _find(delim: Uint8Array): number {
    const all = this._flatten();
    outer: for (let i = 0; i + delim.length <= all.length; i++) {
      for (let j = 0; j < delim.length; j++) if (all[i + j] !== delim[j]) continue outer;
      return i;
    }
    return -1;
  }

  private _flatten(): Uint8Array {
    if (this._chunks.length === 1) return this._chunks[0]!;
    const all = new Uint8Array(this._size);
    let o = 0;
    for (const c of this._chunks) {
      all.set(c, o);
      o += c.length;
    }
    this._chunks = this._size ? [all] : [];
    return all;
  }

  private _take(n: number): Uint8Array {
    const first = this._chunks[0]!;
    let out: Uint8Array;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this._chunks.shift();
      else this._chunks[0] = first.subarray(n);
    } else {
      out = this._flatten().subarray(0, n);
      this._chunks[0] = this._chunks[0]!.subarray(n);
    }
    this._size -= n;
    return out;
  }
}

export interface HttpRequest {
  method: string;
  /** The request target as sent (path and query, or an absolute URL). */
  target: string;
  /** Header names in lower case; repeated headers joined with ", ". */
  headers: Map<string, string>;
  body: BodyReader;
}

const CRLF = encodeUtf8('\r\n');
const HEAD_END = encodeUtf8('\r\n\r\n');

/** Reads the next request head; null when the connection ended between requests. */
export async function readRequest(s: ByteStream): Promise<HttpRequest | null> {
  let text = '';
  // Empty lines before a request are allowed (RFC 9112 §2.2).
  while (!text) {
    const raw = await s.readUntil(HEAD_END, MAX_HEAD);
    if (!raw) return null;
    text = latin1(raw.subarray(0, raw.length - 4)).replace(/^(\r\n)+/, '');
  }
  const lines = text.split('\r\n');
  const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(lines[0] ?? '');
  if (!m) throw new HttpError(400, 'malformed request line');
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const c = line.indexOf(':');
    if (c <= 0 || /\s/.test(line.slice(0, c))) throw new HttpError(400, 'malformed header');
    const k = line.slice(0, c).toLowerCase();
    const v = line.slice(c + 1).trim();
    headers.set(k, headers.has(k) ? `${headers.get(k)!}, ${v}` : v);
  }
  const te = headers.get('transfer-encoding');
  let body: BodyReader;
  if (te !== undefined) {
    if (te.toLowerCase() !== 'chunked') throw new HttpError(501, `transfer encoding ${te} not supported`);
    body = new ChunkedBody(s);
  } else {
    const cl = headers.get('content-length');
    if (cl !== undefined && !/^\d{1,15}$/.test(cl)) throw new HttpError(400, 'bad Content-Length');
    body = new LengthBody(s, cl === undefined ? 0 : Number(cl));
  }
  return { method: m[1]!, target: m[2]!, headers, body };
}

/** A request body, pulled piece by piece. */
export interface BodyReader {
  /** The declared length, if known. */
  readonly length: number | undefined;
  /** The next piece; null at its end. HttpError(400) if the connection ends first or the framing is wrong. */
  next(): Promise<Uint8Array | null>;
}

/** Reads and drops what is left of a body (before the next request on the connection). */
export async function drain(b: BodyReader): Promise<void> {
  while (await b.next());
}

/** Reads a small body whole (PROPFIND, LOCK); HttpError(413) past `limit`. */
export async function readSmall(b: BodyReader, limit = 64 * 1024): Promise<string> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for (let p; (p = await b.next()); ) {
    n += p.length;
    if (n > limit) throw new HttpError(413, 'request body too large');
    parts.push(p);
  }
  const all = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return decodeUtf8(all);
}

class LengthBody implements BodyReader {
  private _left: number;
  constructor(private readonly _s: ByteStream, readonly length: number) {
    this._left = length;
  }

  async next(): Promise<Uint8Array | null> {
    if (this._left === 0) return null;
    const b = await this._s.read(Math.min(this._left, 256 * 1024));
    if (!b) throw new HttpError(400, 'connection ended inside the body');
    this._left -= b.length;
    return b;
  }
}

class ChunkedBody implements BodyReader {
  readonly length = undefined;
  private _left = 0;
  private _done = false;
  constructor(private readonly _s: ByteStream) {}

  async next(): Promise<Uint8Array | null> {
    if (this._done) return null;
    if (this._left === 0) {
      const line = await this._s.readUntil(CRLF, 1024, 400);
      if (!line) throw new HttpError(400, 'connection ended inside the body');
      const m = /^([0-9a-fA-F]{1,12})(;.*)?\r\n$/.exec(latin1(line));
      if (!m) throw new HttpError(400, 'malformed chunk');
      this._left = parseInt(m[1]!, 16);
      if (this._left === 0) {
        // Trailers, then the empty line.
        for (;;) {
          const t = await this._s.readUntil(CRLF, MAX_HEAD, 400);
          if (!t) throw new HttpError(400, 'connection ended inside the body');
          if (t.length === 2) break;
        }
        this._done = true;
        return null;
      }
    }
    const b = await this._s.read(Math.min(this._left, 256 * 1024));
    if (!b) throw new HttpError(400, 'connection ended inside the body');
    this._left -= b.length;
    if (this._left === 0) {
      const end = await this._s.readExact(2);
      if (!end || end[0] !== 13 || end[1] !== 10) throw new HttpError(400, 'malformed chunk');
    }
    return b;
  }
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 4096) s += String.fromCharCode(...b.subarray(i, i + 4096));
  return s;
}

/** Where a response goes: the connection's bytes toward the guest, paced by what is still queued. */
export interface ResponseSink {
  write(b: Uint8Array): void;
  /** Resolves once the bytes queued toward the guest fell below the pacing threshold; BrokenConnection if closed. */
  drained(): Promise<void>;
  /** The guest closed this connection (what is written goes nowhere). */
  readonly closed: boolean;
}

export const REASONS: Record<number, string> = {
  200: 'OK', 201: 'Created', 204: 'No Content', 206: 'Partial Content', 207: 'Multi-Status',
  400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict',
  411: 'Length Required', 412: 'Precondition Failed', 413: 'Content Too Large', 415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable', 423: 'Locked', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error',
  501: 'Not Implemented', 502: 'Bad Gateway', 507: 'Insufficient Storage',
};

/** Writes a response head; `headers` values are sent as given (they must hold no CR or LF). */
export function responseHead(status: number, headers: Record<string, string | number>): Uint8Array {
  let s = `HTTP/1.1 ${status} ${REASONS[status] ?? 'Status'}\r\n`;
  for (const [k, v] of Object.entries(headers)) s += `${k}: ${String(v).replace(/[\r\n]/g, ' ')}\r\n`;
  return encodeUtf8(s + '\r\n');
}
