// The shared clipboard, "by demand" (VD_AGENT_CAP_CLIPBOARD_BY_DEMAND; docs/spice-protocol.md §3.9): whoever owns a
// selection announces the types it can give (GRAB); the other side asks for one type when it needs the data
// (REQUEST) and gets it (CLIPBOARD); the owner gives the selection up with RELEASE. Data moves only when someone
// pastes, so copying a big picture in the guest costs nothing until the client reads it.
import { Emitter, type Event } from '../emitter.ts';
import { Reader } from '../proto/reader.ts';
import { decodeUtf8, encodeUtf8 } from '../proto/utf8.ts';
import { startTimer } from '../timers.ts';
import { AgentMsg, ClipboardType, Selection, clipboardPrefix, readSelection } from './protocol.ts';

export class ClipboardError extends Error {
  override readonly name = 'ClipboardError';
}

/** What the client offers when it takes a selection: text, a PNG picture, or both. */
export interface ClipboardContent {
  text?: string;
  png?: Uint8Array;
}

export interface GuestGrab {
  selection: number;
  /** ClipboardType values the guest offers. */
  types: number[];
}

/** What the clipboard needs from the agent it runs over. */
export interface ClipboardHost {
  send(type: number, payload: Uint8Array): Promise<void>;
  /** Both sides announced CLIPBOARD_SELECTION: messages carry the selection byte. */
  readonly selections: boolean;
  /** The agent wants CRLF line ends (Windows guests). */
  readonly crlf: boolean;
  /** The agent is connected and announced CLIPBOARD_BY_DEMAND. */
  readonly ready: boolean;
  /** Largest clipboard item accepted either way, in bytes. */
  readonly maxSize: number;
}

interface Pending {
  type: number;
  resolve: (d: Uint8Array) => void;
  reject: (e: Error) => void;
  cancelTimer: () => void;
}

export class AgentClipboard {
  private readonly _onGuestGrab = new Emitter<GuestGrab>();
  /** The guest took a selection (someone copied in the guest). */
  readonly onGuestGrab: Event<GuestGrab> = this._onGuestGrab.event;
  private readonly _onGuestRelease = new Emitter<number>();
  readonly onGuestRelease: Event<number> = this._onGuestRelease.event;
  private readonly _onRequestServed = new Emitter<{ selection: number; type: number; bytes: number }>();
  /** The guest pasted what the client offered. */
  readonly onRequestServed: Event<{ selection: number; type: number; bytes: number }> = this._onRequestServed.event;

  /** Types the guest offers, per selection it owns. */
  readonly guest = new Map<number, number[]>();
  /** What the client offers, per selection it owns. */
  private readonly _ours = new Map<number, ClipboardContent>();
  private readonly _pending = new Map<number, Pending[]>();

  constructor(private readonly _host: ClipboardHost) {}

  /** Takes `selection` in the guest with this content: a paste in the guest then asks the client for it. */
  async set(content: ClipboardContent, selection: number = Selection.CLIPBOARD): Promise<void> {
    this._requireReady();
    const types: number[] = [];
    if (content.text !== undefined) {
      const size = encodeUtf8(content.text).length;
      if (size > this._host.maxSize)
        throw new ClipboardError(`clipboard text of ${size} bytes exceeds the ${this._host.maxSize}-byte limit`);
      types.push(ClipboardType.UTF8_TEXT);
    }
    if (content.png !== undefined) {
      if (content.png.length > this._host.maxSize)
        throw new ClipboardError(
          `clipboard image of ${content.png.length} bytes exceeds the ${this._host.maxSize}-byte limit`,
        );
      types.push(ClipboardType.PNG);
    }
    if (!types.length) throw new ClipboardError('nothing to put on the clipboard');
    this._checkSelection(selection);
    this._ours.set(selection, content);
    this.guest.delete(selection);
    const w = clipboardPrefix(this._host.selections, selection);
    for (const t of types) w.u32(t);
    await this._host.send(AgentMsg.CLIPBOARD_GRAB, w.finish());
  }

  /** Gives up a selection the client owns. */
  async release(selection: number = Selection.CLIPBOARD): Promise<void> {
    if (!this._ours.delete(selection) || !this._host.ready) return;
    await this._host.send(AgentMsg.CLIPBOARD_RELEASE, clipboardPrefix(this._host.selections, selection).finish());
  }

  /** Reads one type of what the guest owns (undefined if the guest owns nothing with that type). */
  async request(
    type: number,
    selection: number = Selection.CLIPBOARD,
    timeoutMs = 10_000,
  ): Promise<Uint8Array | undefined> {
    this._requireReady();
    this._checkSelection(selection);
    if (!this.guest.get(selection)?.includes(type)) return undefined;
    const data = new Promise<Uint8Array>((resolve, reject) => {
      const p: Pending = {
        type, resolve, reject,
        cancelTimer: startTimer(timeoutMs, () => {
          const list = this._pending.get(selection) ?? [];
          const i = list.indexOf(p);
          if (i >= 0) list.splice(i, 1);
          reject(new ClipboardError(`the guest did not send its clipboard within ${timeoutMs} ms`));
        }),
      };
      const list = this._pending.get(selection) ?? [];
      list.push(p);
      this._pending.set(selection, list);
    });
    const w = clipboardPrefix(this._host.selections, selection).u32(type);
    await this._host.send(AgentMsg.CLIPBOARD_REQUEST, w.finish());
    return data;
  }

  /** The guest's clipboard text, with the client's line ends (LF), or undefined if it holds no text. */
  async readText(selection: number = Selection.CLIPBOARD, timeoutMs?: number): Promise<string | undefined> {
    const b = await this.request(ClipboardType.UTF8_TEXT, selection, timeoutMs);
    if (b === undefined) return undefined;
    let text = decodeUtf8(b);
    // X11 agents may end the text with the C string's NUL.
    if (text.endsWith('\0')) text = text.slice(0, -1);
    return this._host.crlf ? text.replace(/\r\n/g, '\n') : text;
  }

  /** The guest's clipboard picture as PNG bytes, or undefined if it holds none. */
  readPng(selection: number = Selection.CLIPBOARD, timeoutMs?: number): Promise<Uint8Array | undefined> {
    return this.request(ClipboardType.PNG, selection, timeoutMs);
  }

  /** Handles a clipboard message from the agent. */
  handle(type: number, data: Uint8Array): void {
    const r = new Reader(data, 0, `agent clipboard message ${type}`);
    const selection = readSelection(r, this._host.selections);
    switch (type) {
      case AgentMsg.CLIPBOARD_GRAB: {
        const types: number[] = [];
        while (r.remaining >= 4) types.push(r.u32());
        this._ours.delete(selection);
        this.guest.set(selection, types);
        this._onGuestGrab.fire({ selection, types });
        return;
      }
      case AgentMsg.CLIPBOARD_RELEASE:
        this.guest.delete(selection);
        this._failPending(selection, new ClipboardError('the guest released its clipboard'));
        this._onGuestRelease.fire(selection);
        return;
      case AgentMsg.CLIPBOARD_REQUEST:
        void this._serve(selection, r.u32());
        return;
      case AgentMsg.CLIPBOARD: {
        const dataType = r.u32();
        const list = this._pending.get(selection) ?? [];
        // Replies come in request order; a NONE reply answers the oldest request with "no data".
        const i = dataType === ClipboardType.NONE ? (list.length ? 0 : -1) : list.findIndex((p) => p.type === dataType);
        if (i < 0) return;
        const [p] = list.splice(i, 1);
        p!.cancelTimer();
        if (dataType === ClipboardType.NONE) p!.reject(new ClipboardError('the guest had no data of that type'));
        else p!.resolve(r.rest().slice());
        return;
      }
    }
  }

  /** Agent gone: forget who owns what, fail reads in progress. */
  reset(reason: Error): void {
    this.guest.clear();
    this._ours.clear();
    for (const s of [...this._pending.keys()]) this._failPending(s, reason);
  }

  dispose(): void {
    for (const e of [this._onGuestGrab, this._onGuestRelease, this._onRequestServed]) e.dispose();
  }

  private async _serve(selection: number, type: number): Promise<void> {
    const c = this._ours.get(selection);
    let bytes: Uint8Array | undefined;
    if (c && type === ClipboardType.UTF8_TEXT && c.text !== undefined) {
      bytes = encodeUtf8(this._host.crlf ? c.text.replace(/\r?\n/g, '\r\n') : c.text);
    } else if (c && type === ClipboardType.PNG && c.png) {
      bytes = c.png;
    }
    const w = clipboardPrefix(this._host.selections, selection);
    if (bytes) w.u32(type).bytes(bytes);
    else w.u32(ClipboardType.NONE);
    await this._host.send(AgentMsg.CLIPBOARD, w.finish()).catch(() => undefined);
    if (bytes) this._onRequestServed.fire({ selection, type, bytes: bytes.length });
  }

  private _failPending(selection: number, e: Error): void {
    for (const p of this._pending.get(selection) ?? []) {
      p.cancelTimer();
      p.reject(e);
    }
    this._pending.delete(selection);
  }

  private _requireReady(): void {
    if (!this._host.ready) throw new ClipboardError('no clipboard: the guest agent (spice-vdagent) is not connected');
  }

  private _checkSelection(selection: number): void {
    if (selection !== Selection.CLIPBOARD && !this._host.selections) {
      throw new ClipboardError('the guest agent has only one clipboard (no PRIMARY selection)');
    }
  }
}
