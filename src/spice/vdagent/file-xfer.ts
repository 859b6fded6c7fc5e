// File transfer into the guest (docs/spice-protocol.md §3.9; vd_agent.h VDAgentFileXfer*): the client proposes a file
// (START with a keyfile naming it and its size), the agent answers CAN_SEND_DATA once it has created the file (or an
// error), the client streams DATA messages and the agent answers SUCCESS when the last byte is written. Either side
// can end a transfer with a STATUS: the client sends CANCELLED to abort. Files land in the guest user's Downloads
// folder (spice-vdagent's choice). The file is read piece by piece from its source and never held whole in memory;
// the server's agent tokens pace the stream.
import { Emitter, type Event } from '../emitter.ts';
import { Writer } from '../proto/writer.ts';
import { encodeUtf8 } from '../proto/utf8.ts';
import {
  AGENT_HEADER_SIZE,
  AGENT_MAX_CHUNK,
  AgentMsg,
  XferStatus,
  decodeXferStatus,
  xferStartKeyfile,
  type XferStatusMessage,
} from './protocol.ts';

/** A file to send: the host supplies its bytes (a browser File, a Node file handle) on demand. */
export interface FileSource {
  name: string;
  size: number;
  /** Reads up to `length` bytes at `offset`; may return fewer only at the end of the file. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

export interface TransferProgress {
  id: number;
  name: string;
  sent: number;
  size: number;
}

export type TransferErrorCode =
  | 'cancelled' | 'guest-cancelled' | 'error' | 'no-space' | 'session-locked' | 'agent-not-connected' | 'disabled'
  | 'agent-gone' | 'source';

export class FileTransferError extends Error {
  override readonly name = 'FileTransferError';
  constructor(
    readonly code: TransferErrorCode,
    message: string,
    readonly file: string,
  ) {
    super(message);
  }
}

export interface TransferHost {
  send(type: number, payload: Uint8Array, opts?: { bulk?: boolean; tag?: string }): Promise<void>;
  drop(tag: string, error: Error): void;
  whenBulkBelow(n: number): Promise<void>;
  readonly ready: boolean;
  /** The agent refuses transfers (FILE_XFER_DISABLED announced). */
  readonly disabled: boolean;
}

/** DATA bodies are sized so that a whole message fills exactly 32 chunks (spice-gtk reads 64 KiB at a time). */
const DATA_HEADER = 12; // {id u32, size u64}
export const XFER_DATA_SIZE = 32 * AGENT_MAX_CHUNK - AGENT_HEADER_SIZE - DATA_HEADER;

interface Active {
  id: number;
  name: string;
  status: (s: XferStatusMessage) => void;
  cancelled: boolean;
}

// GLib's GIOErrorEnum values spice-vdagent reports (FILE_XFER_DETAILED_ERRORS).
const GIO_ERRORS: Record<number, string> = {
  1: 'not found',
  2: 'a file of that name exists',
  3: 'is a directory',
  9: 'file name too long',
  10: 'invalid file name',
  12: 'no space left on the device',
  14: 'permission denied',
  15: 'not supported',
  19: 'cancelled',
};

export class AgentFileTransfer {
  private readonly _onProgress = new Emitter<TransferProgress>();
  readonly onProgress: Event<TransferProgress> = this._onProgress.event;
  private _nextId = 1;
  private readonly _active = new Map<number, Active>();

  constructor(private readonly _host: TransferHost) {}

  /**
   * Sends one file; resolves when the guest reports it written. `signal` cancels it (the guest removes the partial
   * file). Rejects with FileTransferError carrying the guest's reason.
   */
  async send(
    file: FileSource,
    opts: { signal?: AbortSignalLike; onProgress?: (p: TransferProgress) => void } = {},
  ): Promise<void> {
    if (!this._host.ready)
      throw new FileTransferError(
        'agent-not-connected',
        'no file transfer: the guest agent (spice-vdagent) is not connected',
        file.name,
      );
    if (this._host.disabled)
      throw new FileTransferError('disabled', 'the guest agent refuses file transfers', file.name);
    if (opts.signal?.aborted) throw new FileTransferError('cancelled', `${file.name}: cancelled`, file.name);
    const id = this._nextId++;
    const tag = `xfer:${id}`;
    let statusWaiter: ((s: XferStatusMessage) => void) | undefined;
    const statuses: XferStatusMessage[] = [];
    const active: Active = {
      id, name: file.name, cancelled: false,
      status: (s) => (statusWaiter ? statusWaiter(s) : statuses.push(s)),
    };
    const nextStatus = (): Promise<XferStatusMessage> =>
      statuses.length
        ? Promise.resolve(statuses.shift()!)
        : new Promise((resolve) => (statusWaiter = (s) => ((statusWaiter = undefined), resolve(s))));
    this._active.set(id, active);

    let abortReject: ((e: Error) => void) | undefined;
    const aborted = new Promise<never>((_, reject) => (abortReject = reject));
    aborted.catch(() => undefined);
    const onAbort = (): void => {
      if (active.cancelled) return;
      active.cancelled = true;
      const e = new FileTransferError('cancelled', `${file.name}: cancelled`, file.name);
      this._host.drop(tag, e);
      // Tell the agent, which deletes what it wrote.
      void this._host
        .send(AgentMsg.FILE_XFER_STATUS, new Writer(8).u32(id).u32(XferStatus.CANCELLED).finish())
        .catch(() => undefined);
      abortReject!(e);
    };
    opts.signal?.addEventListener('abort', onAbort);
    const report = (sent: number): void => {
      const p = { id, name: file.name, sent, size: file.size };
      opts.onProgress?.(p);
      this._onProgress.fire(p);
    };
    try {
      const keyfile = encodeUtf8(xferStartKeyfile(file.name, file.size) + '\0');
      await Promise.race([
        this._host.send(AgentMsg.FILE_XFER_START, new Writer(4 + keyfile.length).u32(id).bytes(keyfile).finish()),
        aborted,
      ]);
      const first = await Promise.race([nextStatus(), aborted]);
      if (first.result !== XferStatus.CAN_SEND_DATA) throw statusError(first, file.name);
      report(0);
      // A status during the stream (an error, or SUCCESS) ends it early.
      let early: XferStatusMessage | undefined;
      const during = nextStatus().then((s) => (early = s));
      let sent = 0;
      while (sent < file.size && !early) {
        await Promise.race([this._host.whenBulkBelow(2), aborted]);
        if (early) break;
        const want = Math.min(XFER_DATA_SIZE, file.size - sent);
        let piece: Uint8Array;
        try {
          piece = await Promise.race([file.read(sent, want), aborted]);
        } catch (e) {
          if (e instanceof FileTransferError) throw e;
          this._cancelQuietly(id, tag, file.name);
          throw new FileTransferError('source', `${file.name}: reading failed: ${(e as Error).message}`, file.name);
        }
        if (piece.length === 0) {
          this._cancelQuietly(id, tag, file.name);
          throw new FileTransferError(
            'source',
            `${file.name}: the file ended at ${sent} of ${file.size} bytes`,
            file.name,
          );
        }
        const body = new Writer(DATA_HEADER + piece.length).u32(id).u64(piece.length).bytes(piece).finish();
        const at = sent + piece.length;
        sent = at;
        void this._host.send(AgentMsg.FILE_XFER_DATA, body, { bulk: true, tag }).then(
          () => report(at),
          () => undefined,
        );
      }
      const end = early ?? (await Promise.race([during.then(() => early!), aborted]));
      if (end.result !== XferStatus.SUCCESS) throw statusError(end, file.name);
      if (sent < file.size)
        throw new FileTransferError(
          'error',
          `${file.name}: the guest reported success before all bytes were sent`,
          file.name,
        );
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      this._active.delete(id);
      this._host.drop(tag, new FileTransferError('cancelled', `${file.name}: ended`, file.name));
    }
  }

  /** A STATUS from the agent. */
  handle(data: Uint8Array): void {
    const s = decodeXferStatus(data);
    this._active.get(s.id)?.status(s);
  }

  /** Agent gone: every transfer fails. */
  reset(): void {
    for (const a of this._active.values()) a.status({ id: a.id, result: -1 });
  }

  dispose(): void {
    this._onProgress.dispose();
  }

  private _cancelQuietly(id: number, tag: string, name: string): void {
    this._host.drop(tag, new FileTransferError('cancelled', `${name}: cancelled`, name));
    void this._host
      .send(AgentMsg.FILE_XFER_STATUS, new Writer(8).u32(id).u32(XferStatus.CANCELLED).finish())
      .catch(() => undefined);
  }
}

/** The subset of AbortSignal the core uses (both hosts have AbortSignal; the core's lib does not declare it). */
export interface AbortSignalLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

function statusError(s: XferStatusMessage, name: string): FileTransferError {
  switch (s.result) {
    case XferStatus.CANCELLED:
      return new FileTransferError('guest-cancelled', `${name}: the guest cancelled the transfer`, name);
    case XferStatus.NOT_ENOUGH_SPACE:
      return new FileTransferError(
        'no-space',
        `${name}: not enough space in the guest${s.freeSpace !== undefined ? ` (${s.freeSpace} bytes free)` : ''}`,
        name,
      );
    case XferStatus.SESSION_LOCKED:
      return new FileTransferError('session-locked', `${name}: the guest's session is locked`, name);
    case XferStatus.VDAGENT_NOT_CONNECTED:
      return new FileTransferError('agent-not-connected', `${name}: no user session agent runs in the guest`, name);
    case XferStatus.DISABLED:
      return new FileTransferError('disabled', `${name}: file transfer is disabled in the guest`, name);
    case -1:
      return new FileTransferError('agent-gone', `${name}: the guest agent disconnected`, name);
    default: {
      const why = s.ioError ? `: ${GIO_ERRORS[s.ioError.code] ?? `I/O error ${s.ioError.code}`}` : '';
      return new FileTransferError('error', `${name}: the guest could not write the file${why}`, name);
    }
  }
}
