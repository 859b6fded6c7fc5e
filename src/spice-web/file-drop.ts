// Files dropped on the console (or picked with the file button) go to the guest through the SPICE agent, one after
// another: the guest's spice-vdagent saves them in its user's Downloads folder. Each file is read piece by piece
// from the browser's File (file.slice(...).arrayBuffer()), never whole, so a file of gigabytes costs no memory; each
// transfer has its progress and can be cancelled (the guest then deletes the partial file). Errors the guest reports
// (no space, transfers disabled, session locked, no agent in the session ...) end up on the transfer, in words.
import {
  FileTransferError, sendFileToGuest, sendPath, type FileSource, type SpiceAgent, type WebdavShare,
} from '../spice/index.ts';

export type TransferState = 'queued' | 'sending' | 'done' | 'failed' | 'cancelled';

export interface Transfer {
  /** Page-local id (stable while the page lives; DOM ids and tests use it). */
  readonly id: number;
  readonly name: string;
  readonly size: number;
  sent: number;
  state: TransferState;
  /** failed: what went wrong, for the person. */
  error?: string;
  /** failed: FileTransferError's code when the guest or the core said why. */
  code?: string;
  startedAt?: number;
  endedAt?: number;
  /** The path taken: the WebDAV drop box (fast) or the agent. */
  via?: 'webdav' | 'agent';
}

/** A browser File as the core's FileSource: each read is one slice, read when the stream needs it. */
export function fileSource(file: File): FileSource {
  return {
    name: file.name,
    size: file.size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      return new Uint8Array(await file.slice(offset, offset + length).arrayBuffer());
    },
  };
}

/** Turns a transfer error into a sentence for the person. */
export function transferErrorText(e: unknown): { text: string; code?: string } {
  if (e instanceof FileTransferError) {
    const why: Partial<Record<string, string>> = {
      'agent-not-connected': 'the guest agent is not connected (is spice-vdagent running in a desktop session?)',
      disabled: 'the guest does not accept files (file transfer is disabled in its agent)',
      'session-locked': 'the guest\'s session is locked: unlock it and try again',
      'agent-gone': 'the guest agent went away during the transfer',
    };
    return { text: why[e.code] ? `${e.file}: ${why[e.code]}` : e.message, code: e.code };
  }
  return { text: (e as Error)?.message ?? String(e) };
}

export interface FileQueueOptions {
  /** The agent of the current session (undefined while disconnected). */
  agent: () => SpiceAgent | undefined;
  /** The WebDAV share: files go through it when the guest fetches drops (much faster than the agent). */
  share?: () => WebdavShare | undefined;
  onChange: () => void;
}

/** The transfers of this page, in order; finished ones stay listed until dismissed. */
export class FileQueue {
  readonly transfers: Transfer[] = [];
  private readonly _files = new Map<number, File>();
  private readonly _aborts = new Map<number, AbortController>();
  private _nextId = 1;
  private _running = false;
  private _disposed = false;
  /** Progress notices are coalesced to one per animation frame. */
  private _changeQueued = false;

  constructor(private readonly _opts: FileQueueOptions) {}

  /** Queues files; they start one after another. Returns the new transfers. */
  add(files: Iterable<File>): Transfer[] {
    const added: Transfer[] = [];
    for (const f of files) {
      const t: Transfer = { id: this._nextId++, name: f.name, size: f.size, sent: 0, state: 'queued' };
      this.transfers.push(t);
      this._files.set(t.id, f);
      added.push(t);
    }
    this._changed(true);
    void this._run();
    return added;
  }

  /** Cancels a queued or running transfer. */
  cancel(id: number): void {
    const t = this.transfers.find((x) => x.id === id);
    if (!t) return;
    if (t.state === 'queued') {
      this._finish(t, 'cancelled');
    } else if (t.state === 'sending') {
      this._aborts.get(id)?.abort();
    }
  }

  /** Forgets a finished transfer (its row goes away). */
  dismiss(id: number): void {
    const i = this.transfers.findIndex((x) => x.id === id);
    if (i < 0 || ['queued', 'sending'].includes(this.transfers[i]!.state)) return;
    this.transfers.splice(i, 1);
    this._changed(true);
  }

  /** Forgets every finished transfer. */
  clearFinished(): void {
    for (let i = this.transfers.length - 1; i >= 0; i--) {
      if (!['queued', 'sending'].includes(this.transfers[i]!.state)) this.transfers.splice(i, 1);
    }
    this._changed(true);
  }

  get active(): boolean {
    return this.transfers.some((t) => t.state === 'queued' || t.state === 'sending');
  }

  dispose(): void {
    this._disposed = true;
    for (const a of this._aborts.values()) a.abort();
    for (const t of this.transfers) if (t.state === 'queued') t.state = 'cancelled';
  }

  private async _run(): Promise<void> {
    if (this._running) return;
    this._running = true;
    try {
      for (;;) {
        const t = this.transfers.find((x) => x.state === 'queued');
        if (!t || this._disposed) return;
        await this._send(t);
      }
    } finally {
      this._running = false;
    }
  }

  private async _send(t: Transfer): Promise<void> {
    const file = this._files.get(t.id)!;
    const agent = this._opts.agent();
    const share = this._opts.share?.();
    const viaWebdav = sendPath(share) === 'webdav';
    if (!agent || (!viaWebdav && agent.state !== 'ready')) {
      this._finish(
        t,
        'failed',
        'the guest has no agent connected: install and run spice-vdagent in the guest (in its desktop session) to send files',
        'agent-not-connected',
      );
      return;
    }
    const ac = new AbortController();
    this._aborts.set(t.id, ac);
    t.state = 'sending';
    t.startedAt = Date.now();
    this._changed(true);
    try {
      t.via = viaWebdav ? 'webdav' : 'agent';
      await sendFileToGuest(agent, viaWebdav ? share : undefined, fileSource(file), {
        signal: ac.signal,
        onProgress: (p) => {
          t.sent = p.sent;
          this._changed(false);
        },
      });
      t.sent = t.size;
      this._finish(t, 'done');
    } catch (e) {
      if (ac.signal.aborted || (e instanceof FileTransferError && e.code === 'cancelled')) this._finish(t, 'cancelled');
      else {
        const { text, code } = transferErrorText(e);
        this._finish(t, 'failed', text, code);
      }
    } finally {
      this._aborts.delete(t.id);
    }
  }

  private _finish(t: Transfer, state: TransferState, error?: string, code?: string): void {
    t.state = state;
    t.error = error;
    t.code = code;
    t.endedAt = Date.now();
    this._files.delete(t.id);
    this._changed(true);
  }

  private _changed(now: boolean): void {
    if (this._disposed) return;
    if (now) {
      this._opts.onChange();
      return;
    }
    if (this._changeQueued) return;
    this._changeQueued = true;
    requestAnimationFrame(() => {
      this._changeQueued = false;
      if (!this._disposed) this._opts.onChange();
    });
  }
}

export interface DropTargetOptions {
  /** The pointer is over the target with files (true), or left it / dropped (false). */
  onDragState: (over: boolean) => void;
  /** The files dropped; `folders`: how many dropped folders were left out (their contents are not walked). */
  onFiles: (files: File[], folders: number) => void;
}

/** Makes `el` accept dropped files. Returns a function that removes the listeners. */
export function attachDropTarget(el: HTMLElement, opts: DropTargetOptions): () => void {
  // dragenter/dragleave fire for every child crossed: count them.
  let depth = 0;
  const hasFiles = (e: DragEvent) => !!e.dataTransfer && [...e.dataTransfer.types].includes('Files');
  const enter = (e: DragEvent) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    if (depth++ === 0) opts.onDragState(true);
  };
  const over = (e: DragEvent) => {
    if (!hasFiles(e)) return;
    e.preventDefault(); // accept the drop
    e.dataTransfer!.dropEffect = 'copy';
  };
  const leave = (e: DragEvent) => {
    if (!hasFiles(e)) return;
    if (--depth <= 0) {
      depth = 0;
      opts.onDragState(false);
    }
  };
  const drop = (e: DragEvent) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.stopPropagation();
    depth = 0;
    opts.onDragState(false);
    // Folders show up as zero-size entries with no type; webkitGetAsEntry tells them apart.
    const files: File[] = [];
    let folders = 0;
    const items = e.dataTransfer!.items;
    if (items && items.length) {
      for (const it of items) {
        if (it.kind !== 'file') continue;
        const entry = (
          it as DataTransferItem & { webkitGetAsEntry?: () => { isDirectory: boolean } | null }
        ).webkitGetAsEntry?.();
        if (entry?.isDirectory) {
          folders++;
          continue;
        }
        const f = it.getAsFile();
        if (f) files.push(f);
      }
    } else {
      files.push(...e.dataTransfer!.files);
    }
    opts.onFiles(files, folders);
  };
  // Files dropped next to the console would make the browser open them in place of the page: refuse them there.
  const guard = (e: DragEvent) => {
    if (!hasFiles(e) || el.contains(e.target as Node)) return;
    e.preventDefault();
    e.dataTransfer!.dropEffect = 'none';
  };
  el.addEventListener('dragenter', enter);
  el.addEventListener('dragover', over);
  el.addEventListener('dragleave', leave);
  el.addEventListener('drop', drop);
  window.addEventListener('dragover', guard);
  window.addEventListener('drop', guard);
  return () => {
    window.removeEventListener('dragover', guard);
    window.removeEventListener('drop', guard);
    el.removeEventListener('dragenter', enter);
    el.removeEventListener('dragover', over);
    el.removeEventListener('dragleave', leave);
    el.removeEventListener('drop', drop);
  };
}
