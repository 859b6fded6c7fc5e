// Fast file drops: a dropped file is offered to the guest through the WebDAV share rather than pushed through the
// agent (the port channel carries 100+ MiB/s into a TCG guest, spice-vdagent ~7). The guest half (the desktop
// image's oriel-webdavd, on mux connections of its own) long-polls GET /.oriel-drops/next, which answers
// "ID/SIZE/NAME" when a file waits (204 after WAIT_MS otherwise); the guest refuses one bigger than its free space
// before any byte moves, else it GETs /.oriel-drops/ID (sent chunked, so that a cancel can break the stream: the guest
// fails on the bad chunk and removes its partial file) into ~/Downloads, and POSTs ?status=done with the name it
// chose, or ?status=failed with its error. Progress, cancel and errors are the agent path's (FileTransferError).
import { FileTransferError, type AbortSignalLike, type FileSource, type TransferProgress } from '../vdagent/file-xfer.ts';
import { startTimer } from '../timers.ts';
import { decodeUtf8, encodeUtf8 } from '../proto/utf8.ts';
import { MUX_FRAME_DATA } from './mux.ts';
import { BrokenConnection, readSmall, responseHead, type HttpRequest, type ResponseSink } from './http.ts';
import type { DavPath } from './fs.ts';
import { sendSimple } from './server.ts';

export const DROPS_DIR = '.oriel-drops';
/** How long a poll waits for a file before answering 204 (the guest waits 45 s). */
const WAIT_MS = 10_000;
/** The guest counts as fetching drops while it polled this recently. */
const ALIVE_MS = 15_000;
/** A file not fetched this long after being offered or queued fails. */
const FETCH_TIMEOUT_MS = 30_000;
/** Bytes of the file per HTTP chunk: with its "fff57\r\n" head and "\r\n" tail, 16 whole mux frames (~1 MiB). */
const PIECE = 16 * MUX_FRAME_DATA - 9;

type DropState = 'queued' | 'offered' | 'sending' | 'sent' | 'finished';

interface Drop {
  id: number;
  file: FileSource;
  name: string;
  state: DropState;
  cancelled: boolean;
  resolve: (name: string) => void;
  reject: (e: Error) => void;
  report: (sent: number) => void;
  stopTimer?: () => void;
}

/** A name that is one plain file name in the guest. */
export function dropName(name: string): string {
  let n = '';
  for (const ch of name) n += ch < ' ' || ch === '\x7f' || ch === '/' || ch === '\\' ? '_' : ch;
  n = n.trim().slice(0, 200);
  return n === '' || n === '.' || n === '..' ? 'file' : n;
}

export class DropBox {
  private readonly _drops = new Map<number, Drop>();
  private _waiters: { sink: ResponseSink; give: (d: Drop | undefined) => void }[] = [];
  private _nextId = 1;
  private _lastPoll = -Infinity;
  private _polling = 0;

  /** The guest's fetch loop is there (it polls now or did a moment ago). */
  get ready(): boolean {
    return this._polling > 0 || Date.now() - this._lastPoll < ALIVE_MS;
  }

  /** Offers a file to the guest; resolves with the name it got in ~/Downloads once written there. */
  offer(
    file: FileSource,
    opts: { signal?: AbortSignalLike; onProgress?: (p: TransferProgress) => void } = {},
  ): Promise<string> {
    const id = this._nextId++;
    return new Promise<string>((resolve, reject) => {
      const d: Drop = {
        id, file, name: dropName(file.name), state: 'queued', cancelled: false,
        resolve: (n) => (this._finish(d), resolve(n)),
        reject: (e) => (this._finish(d), reject(e)),
        report: (sent) => opts.onProgress?.({ id, name: file.name, sent, size: file.size }),
      };
      if (opts.signal?.aborted) return reject(cancelled(file.name));
      const onAbort = () => {
        if (d.state === 'finished') return;
        d.cancelled = true;
        d.reject(cancelled(file.name));
      };
      opts.signal?.addEventListener('abort', onAbort);
      const done = () => opts.signal?.removeEventListener('abort', onAbort);
      const origFinish = d.resolve;
      d.resolve = (n) => (done(), origFinish(n));
      const origReject = d.reject;
      d.reject = (e) => (done(), origReject(e));
      this._drops.set(id, d);
      d.report(0);
      this._arm(d, 'the guest did not fetch the file (is its shared-folder service running?)');
      this._dispatch();
    });
  }

  /** Answers the guest's waiting polls now (204), so that its loop reads OPTIONS again (the shared folder changed). */
  wake(): void {
    for (const w of this._waiters.splice(0)) w.give(undefined);
  }

  /** The channel went away: every pending drop fails. */
  reset(): void {
    for (const d of [...this._drops.values()])
      d.reject(new FileTransferError('agent-gone', `${d.file.name}: the guest's WebDAV daemon went away`, d.file.name));
    for (const w of this._waiters.splice(0)) w.give(undefined);
  }

  /** The WebdavServer's special handler for /.oriel-drops/…; false for any other path. */
  handle = async (req: HttpRequest, path: DavPath, sink: ResponseSink): Promise<boolean> => {
    if (path[0] !== DROPS_DIR) return false;
    if (path.length === 2 && path[1] === 'next' && req.method === 'GET') await this._next(sink);
    else if (path.length === 2 && /^\d{1,9}$/.test(path[1]!)) await this._one(req, Number(path[1]), sink);
    else sendSimple(sink, 404, 'not found');
    return true;
  };

  private async _next(sink: ResponseSink): Promise<void> {
    this._lastPoll = Date.now();
    let d = this._queued();
    if (!d) {
      this._polling++;
      d = await new Promise<Drop | undefined>((give) => {
        const w = { sink, give: (x: Drop | undefined) => (stop(), give(x)) };
        const stop = startTimer(WAIT_MS, () => {
          this._waiters = this._waiters.filter((x) => x !== w);
          give(undefined);
        });
        this._waiters.push(w);
      });
      this._polling--;
      this._lastPoll = Date.now();
    }
    if (!d || d.state === 'finished') return sendSimple(sink, 204, '');
    d.state = 'offered';
    this._arm(d, 'the guest did not fetch the file');
    const body = encodeUtf8(`${d.id}/${d.file.size}/${d.name}\n`);
    sink.write(responseHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length }));
    sink.write(body);
  }

  private async _one(req: HttpRequest, id: number, sink: ResponseSink): Promise<void> {
    const d = this._drops.get(id);
    const status = /[?&]status=(done|failed)(&|$)/.exec(req.target)?.[1];
    if (req.method === 'POST' && status) {
      const text = (await readSmall(req.body, 4096).catch(() => '')).trim();
      sendSimple(sink, 204, '');
      if (!d || d.state === 'finished') return;
      if (status === 'done') d.resolve(dropName(text || d.name));
      else d.reject(guestError(d.file.name, text));
      return;
    }
    if (req.method !== 'GET' || !d || d.state !== 'offered') return sendSimple(sink, 404, 'no such drop');
    d.state = 'sending';
    d.stopTimer?.();
    sink.write(responseHead(200, { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' }));
    let sent = 0;
    try {
      while (sent < d.file.size) {
        await sink.drained();
        if (d.cancelled) break;
        const b = await d.file.read(sent, Math.min(PIECE, d.file.size - sent));
        if (b.length === 0) throw new Error('the file ended early');
        sink.write(chunk(b));
        sent += b.length;
        d.report(sent);
      }
    } catch (e) {
      if (!(e instanceof BrokenConnection))
        d.reject(new FileTransferError('source', `${d.file.name}: ${(e as Error).message}`, d.file.name));
      d.cancelled = true;
    }
    if (d.cancelled) {
      // Not a chunk size: the guest fails at once and deletes the partial file.
      sink.write(encodeUtf8('\r\nX-cancelled\r\n'));
      if ((d.state as DropState) !== 'finished') d.reject(cancelled(d.file.name));
      throw new BrokenConnection('drop cancelled');
    }
    sink.write(encodeUtf8('0\r\n\r\n'));
    d.state = 'sent';
    this._arm(d, 'the guest did not confirm the file');
  }

  private _queued(): Drop | undefined {
    for (const d of this._drops.values()) if (d.state === 'queued') return d;
    return undefined;
  }

  private _dispatch(): void {
    for (;;) {
      const d = this._queued();
      if (!d) return;
      const w = this._waiters.shift();
      if (!w) return;
      if (w.sink.closed) continue;
      d.state = 'offered'; // taken: _next marks it again and answers
      w.give(d);
    }
  }

  private _arm(d: Drop, why: string): void {
    d.stopTimer?.();
    d.stopTimer = startTimer(FETCH_TIMEOUT_MS, () => {
      if (d.state !== 'finished' && d.state !== 'sending')
        d.reject(new FileTransferError('error', `${d.file.name}: ${why}`, d.file.name));
    });
  }

  private _finish(d: Drop): void {
    d.state = 'finished';
    d.stopTimer?.();
    this._drops.delete(d.id);
  }
}

function chunk(b: Uint8Array): Uint8Array {
  const head = encodeUtf8(`${b.length.toString(16)}\r\n`);
  const out = new Uint8Array(head.length + b.length + 2);
  out.set(head);
  out.set(b, head.length);
  out.set([13, 10], head.length + b.length);
  return out;
}

function cancelled(name: string): FileTransferError {
  return new FileTransferError('cancelled', `${name}: cancelled`, name);
}

function guestError(name: string, text: string): FileTransferError {
  const why = decodeUtf8(encodeUtf8(text)).replace(/^curl: \(\d+\) /, '').slice(0, 300) || 'the guest could not save it';
  // The same words as the agent path's refusal (file-xfer.ts), whichever way the file went.
  if (/no space/i.test(text)) return new FileTransferError('no-space', `${name}: not enough space in the guest (${why})`, name);
  return new FileTransferError('error', `${name}: ${why}`, name);
}
