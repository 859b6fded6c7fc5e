// A WebDAV server (RFC 4918, class 1 and the minimal class 2 davfs2 needs) over a DavFs: OPTIONS, PROPFIND (depth 0
// and 1), GET/HEAD with one byte range, PUT streamed into the file, DELETE, MKCOL, MOVE, COPY, and LOCK/UNLOCK that
// grant every lock (one client, spice-webdavd's, reaches this server). A read-only share answers 403 to every
// write, as phodav (spice-gtk's server) does. Every path goes through paths.ts, so none leaves the share's root.
import { encodeUtf8 } from '../proto/utf8.ts';
import { FS_ERROR_STATUS, DavFsError, type DavFs, type DavPath } from './fs.ts';
import {
  BrokenConnection, HttpError, drain, readRequest, readSmall, responseHead,
  type ByteStream, type HttpRequest, type ResponseSink,
} from './http.ts';
import { isWithin, parseTarget } from './paths.ts';
import { etagOf, lockDiscovery, multistatus } from './xml.ts';

/** Bytes read from the file system per piece of a GET (each waits until the connection drained). */
const READ_PIECE = 256 * 1024;
const LOCK_TIMEOUT_S = 3600;
const ALLOW = 'OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, MKCOL, MOVE, COPY, LOCK, UNLOCK';
const WRITES = new Set(['PUT', 'DELETE', 'MKCOL', 'MOVE', 'COPY', 'LOCK', 'PROPPATCH']);

/** Requests under a reserved first name handled by someone else (the file drops); returns false if not its own. */
export type SpecialHandler = (req: HttpRequest, path: DavPath, sink: ResponseSink) => Promise<boolean>;

export class WebdavServer {
  /** Extra response headers of OPTIONS (how the guest side tells what this client serves). */
  optionsHeaders: Record<string, string> = {};
  special: SpecialHandler | undefined;
  private _lockSeq = 0;

  constructor(public fs: DavFs) {}

  /** Serves the requests of one connection, one after another, until it ends or breaks. */
  async serveConnection(s: ByteStream, sink: ResponseSink): Promise<void> {
    for (;;) {
      let req: HttpRequest | null;
      try {
        req = await readRequest(s);
      } catch (e) {
        // The framing is lost: answer, and read nothing more on this connection.
        sendSimple(sink, e instanceof HttpError ? e.status : 400, (e as Error).message, { Connection: 'close' });
        return;
      }
      if (!req) return;
      try {
        await this.handle(req, sink);
        await drain(req.body);
      } catch (e) {
        // A body that ended early or broke its framing leaves nothing to read after it; nor does a cut response.
        if (e instanceof HttpError) sendSimple(sink, e.status, e.message, { Connection: 'close' });
        return;
      }
    }
  }

  /** Answers one request; its body may be left partly unread (the caller drains it). */
  async handle(req: HttpRequest, sink: ResponseSink): Promise<void> {
    let path: DavPath;
    try {
      path = parseTarget(req.target);
      if (this.special && (await this.special(req, path, sink))) return;
      if (this.fs.readOnly && WRITES.has(req.method)) throw new HttpError(403, 'this shared folder is read-only');
      await this._dispatch(req, path, sink);
    } catch (e) {
      if (e instanceof BrokenConnection) throw e;
      if (e instanceof HttpError) {
        // Only a broken body stops the connection; statuses chosen above are answers like any other.
        if (e.message === 'connection ended inside the body' || e.message === 'malformed chunk') throw e;
        sendSimple(sink, e.status, e.message);
      } else if (e instanceof DavFsError) sendSimple(sink, FS_ERROR_STATUS[e.code], e.message);
      else sendSimple(sink, 500, (e as Error)?.message ?? 'internal error');
    }
  }

  private async _dispatch(req: HttpRequest, path: DavPath, sink: ResponseSink): Promise<void> {
    switch (req.method) {
      case 'OPTIONS':
        return sendSimple(sink, 200, '', {
          DAV: '1, 2', Allow: ALLOW, 'MS-Author-Via': 'DAV', ...this.optionsHeaders,
        });
      case 'PROPFIND':
        return this._propfind(req, path, sink);
      case 'GET':
      case 'HEAD':
        return this._get(req, path, sink);
      case 'PUT':
        return this._put(req, path, sink);
      case 'DELETE':
        if (!path.length) throw new HttpError(403, 'the shared folder itself cannot be deleted');
        if (!(await this.fs.stat(path))) throw new HttpError(404, 'not found');
        await this.fs.remove(path);
        return sendSimple(sink, 204, '');
      case 'MKCOL':
        return this._mkcol(req, path, sink);
      case 'MOVE':
      case 'COPY':
        return this._moveCopy(req, path, sink);
      case 'LOCK':
        return this._lock(req, path, sink);
      case 'UNLOCK':
        return sendSimple(sink, 204, '');
      default:
        return sendSimple(sink, 405, `${req.method} is not supported`, { Allow: ALLOW });
    }
  }

  private async _propfind(req: HttpRequest, path: DavPath, sink: ResponseSink): Promise<void> {
    await readSmall(req.body); // the properties asked for: all live ones are always given
    const depth = req.headers.get('depth') ?? 'infinity';
    const entry = await this.fs.stat(path);
    if (!entry) throw new HttpError(404, 'not found');
    const items = [{ path, entry }];
    // Depth infinity is answered as 1 (RFC 4918 §9.1 lets a server limit it).
    if (entry.type === 'dir' && depth !== '0') {
      for (const e of await this.fs.list(path)) items.push({ path: [...path, e.name], entry: e });
    }
    const body = encodeUtf8(multistatus(items));
    sink.write(responseHead(207, { 'Content-Type': 'application/xml; charset=utf-8', 'Content-Length': body.length }));
    sink.write(body);
  }

  private async _get(req: HttpRequest, path: DavPath, sink: ResponseSink): Promise<void> {
    const e = await this.fs.stat(path);
    if (!e) throw new HttpError(404, 'not found');
    if (e.type === 'dir') {
      const body = encodeUtf8(`${path.length ? path[path.length - 1] : '/'}: a folder\n`);
      sink.write(responseHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length }));
      if (req.method === 'GET') sink.write(body);
      return;
    }
    const range = parseRange(req.headers.get('range'), e.size);
    if (range === 'unsatisfiable') {
      return sendSimple(sink, 416, 'range not satisfiable', { 'Content-Range': `bytes */${e.size}` });
    }
    const [start, end] = range ?? [0, e.size];
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/octet-stream', 'Content-Length': end - start, 'Accept-Ranges': 'bytes',
      ETag: etagOf(e), 'Last-Modified': new Date(e.mtimeMs).toUTCString(),
    };
    if (range) headers['Content-Range'] = `bytes ${start}-${end - 1}/${e.size}`;
    sink.write(responseHead(range ? 206 : 200, headers));
    if (req.method === 'HEAD') return;
    try {
      await sendFileBytes(this.fs, path, start, end, sink);
    } catch (e) {
      // The head promised a length: nothing else can follow on this connection.
      throw new BrokenConnection((e as Error).message);
    }
  }

  private async _put(req: HttpRequest, path: DavPath, sink: ResponseSink): Promise<void> {
    if (!path.length) throw new HttpError(405, 'the shared folder itself is not a file');
    await this._needParentDir(path);
    const old = await this.fs.stat(path);
    if (old?.type === 'dir') throw new HttpError(405, 'a folder of that name exists');
    const w = await this.fs.createWriter(path);
    try {
      for (let b; (b = await req.body.next()); ) await w.write(b);
    } catch (e) {
      await w.abort().catch(() => undefined);
      throw e;
    }
    await w.close();
    sendSimple(sink, old ? 204 : 201, '');
  }

  private async _mkcol(req: HttpRequest, path: DavPath, sink: ResponseSink): Promise<void> {
    if ((req.body.length ?? 1) > 0) throw new HttpError(415, 'MKCOL takes no body');
    if (await this.fs.stat(path)) throw new HttpError(405, 'already exists');
    await this._needParentDir(path);
    await this.fs.mkdir(path);
    sendSimple(sink, 201, '');
  }

  private async _moveCopy(req: HttpRequest, path: DavPath, sink: ResponseSink): Promise<void> {
    const destHeader = req.headers.get('destination');
    if (!destHeader) throw new HttpError(400, 'Destination header missing');
    const dest = parseTarget(destHeader);
    if (this.special && dest[0] === '.oriel-drops') throw new HttpError(403, 'reserved name');
    if (!path.length || !dest.length) throw new HttpError(403, 'the shared folder itself cannot be moved or copied');
    const src = await this.fs.stat(path);
    if (!src) throw new HttpError(404, 'not found');
    if (isWithin(dest, path)) throw new HttpError(403, 'the destination is the source or inside it');
    await this._needParentDir(dest);
    const existing = await this.fs.stat(dest);
    if (existing) {
      if ((req.headers.get('overwrite') ?? 'T').toUpperCase() === 'F')
        throw new HttpError(412, 'the destination exists (Overwrite: F)');
      await this.fs.remove(dest);
    }
    if (req.method === 'MOVE') await this.fs.move(path, dest);
    else await this.fs.copy(path, dest);
    sendSimple(sink, existing ? 204 : 201, '');
  }

  private async _lock(req: HttpRequest, path: DavPath, sink: ResponseSink): Promise<void> {
    await readSmall(req.body);
    let status = 200;
    // LOCK on an unmapped name creates an empty file (RFC 4918 §9.10.4), as davfs2 expects before its PUT.
    if (!(await this.fs.stat(path))) {
      if (!path.length) throw new HttpError(404, 'not found');
      await this._needParentDir(path);
      const w = await this.fs.createWriter(path);
      await w.close();
      status = 201;
    }
    const token = `opaquelocktoken:oriel-${Date.now().toString(16)}-${++this._lockSeq}`;
    const body = encodeUtf8(lockDiscovery(token, path, req.headers.get('depth') ?? 'infinity', LOCK_TIMEOUT_S));
    sink.write(responseHead(status, {
      'Content-Type': 'application/xml; charset=utf-8', 'Content-Length': body.length, 'Lock-Token': `<${token}>`,
    }));
    sink.write(body);
  }

  private async _needParentDir(path: DavPath): Promise<void> {
    const parent = await this.fs.stat(path.slice(0, -1));
    if (parent?.type !== 'dir') throw new HttpError(409, 'the parent folder does not exist');
  }
}

/** Streams bytes [start, end) of a file, piece by piece, each after the connection drained. */
export async function sendFileBytes(
  fs: DavFs, path: DavPath, start: number, end: number, sink: ResponseSink,
  onSent?: (n: number) => void,
): Promise<void> {
  for (let at = start; at < end; ) {
    await sink.drained();
    const b = await fs.read(path, at, Math.min(READ_PIECE, end - at));
    // A file that shrank meanwhile: the length is promised, so this connection cannot go on truthfully.
    if (b.length === 0) throw new DavFsError('io', 'the file shrank while being read');
    sink.write(b);
    at += b.length;
    onSent?.(at - start);
  }
}

/** A single byte range ("bytes=A-B", "A-", "-N"); several ranges or another unit are answered whole. */
export function parseRange(h: string | undefined, size: number): [number, number] | 'unsatisfiable' | undefined {
  const m = h && /^bytes=(\d*)-(\d*)$/.exec(h.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size : Math.min(size, Number(m[2]) + 1);
  }
  if (start >= size || start >= end) return size === 0 && m[1] === '' ? undefined : 'unsatisfiable';
  return [start, end];
}

export function sendSimple(
  sink: ResponseSink, status: number, text: string, headers: Record<string, string | number> = {},
): void {
  const body = encodeUtf8(text ? `${text}\n` : '');
  const h: Record<string, string | number> = { 'Content-Length': body.length, ...headers };
  if (body.length) h['Content-Type'] = 'text/plain; charset=utf-8';
  sink.write(responseHead(status, h));
  if (body.length) sink.write(body);
}
