// The client side of the SPICE agent (spice-vdagent in the guest), reached through the main channel
// (docs/spice-protocol.md §3.9). When the server says an agent is connected (MAIN INIT agent_connected,
// AGENT_CONNECTED or AGENT_CONNECTED_TOKENS) the client starts its side (AGENT_START with the tokens it grants) and
// announces its capabilities; the agent answers with its own. Clipboard, file transfer and monitors config run over
// this.
import { Emitter, type Event } from '../emitter.ts';
import { MainMsgc } from '../proto/constants.ts';
import { Writer } from '../proto/writer.ts';
import { startTimer } from '../timers.ts';
import { AgentClipboard } from './clipboard.ts';
import { AgentFileTransfer } from './file-xfer.ts';
import { AgentPipe, CLIENT_TOKEN_WINDOW } from './pipe.ts';
import {
  AgentCap,
  AgentMsg,
  MonitorsFlag,
  decodeCaps,
  encodeCaps,
  encodeMonitors,
  type AgentMessage,
  type MonitorConfig,
} from './protocol.ts';

/** What the client announces: clipboard by demand with selections, monitors config, detailed transfer errors. */
export const CLIENT_AGENT_CAPS = [
  AgentCap.MOUSE_STATE, AgentCap.MONITORS_CONFIG, AgentCap.REPLY, AgentCap.CLIPBOARD_BY_DEMAND,
  AgentCap.CLIPBOARD_SELECTION, AgentCap.SPARSE_MONITORS_CONFIG, AgentCap.GUEST_LINEEND_LF, AgentCap.MAX_CLIPBOARD,
  AgentCap.MONITORS_CONFIG_POSITION, AgentCap.FILE_XFER_DETAILED_ERRORS,
];

export interface AgentOptions {
  /** Largest clipboard item accepted either way (bytes). Default 64 MiB. */
  maxClipboard?: number;
  /** Monitors config requests closer together than this are merged (ms). Default 300. */
  resizeDebounceMs?: number;
}

/** How the agent reaches the main channel. */
export interface AgentLink {
  send(type: number, body: Uint8Array): void;
}

export type AgentState = 'disconnected' | 'connecting' | 'ready';

/**
 * The size a monitor of `width`×`height` is asked for: the width rounded down to a multiple of 8 (the qxl driver's
 * rule), both within 320×200 … 8192×8192.
 */
export function monitorSize(width: number, height: number): { width: number; height: number } {
  return {
    width: Math.max(320, Math.min(8192, Math.floor(width / 8) * 8)),
    height: Math.max(200, Math.min(8192, Math.floor(height))),
  };
}

export class SpiceAgent {
  private readonly _onState = new Emitter<AgentState>();
  /** disconnected → connecting (server says an agent is there) → ready (its capabilities arrived). */
  readonly onState: Event<AgentState> = this._onState.event;
  private readonly _onWarning = new Emitter<string>();
  /** Something the person should know that is not an error of a call (a guest clipboard over the size limit). */
  readonly onWarning: Event<string> = this._onWarning.event;

  state: AgentState = 'disconnected';
  /** The agent's capabilities (VD_AGENT_CAP_*), once announced. */
  caps = new Set<number>();
  readonly clipboard: AgentClipboard;
  readonly files: AgentFileTransfer;

  private readonly _pipe: AgentPipe;
  private readonly _maxClipboard: number;
  private readonly _debounceMs: number;
  private _pendingMonitors: MonitorConfig[] | undefined;
  private _cancelResize: (() => void) | undefined;
  private _readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(
    private readonly _link: AgentLink,
    opts: AgentOptions = {},
  ) {
    this._maxClipboard = opts.maxClipboard ?? 64 * 1024 * 1024;
    this._debounceMs = opts.resizeDebounceMs ?? 300;
    this._pipe = new AgentPipe(
      {
        sendData: (chunk) => this._link.send(MainMsgc.AGENT_DATA, chunk),
        sendTokens: (n) => this._link.send(MainMsgc.AGENT_TOKEN, new Writer(4).u32(n).finish()),
      },
      (m) => this._dispatch(m),
      (type, size) =>
        this._onWarning.fire(
          `the guest sent an agent message (type ${type}) of ${size} bytes, over the ${this._maxClipboard}-byte limit: ignored`,
        ),
      // Clipboard payloads are the only big agent → client messages; allow their header room.
      this._maxClipboard + 64,
    );
    // The getters below are read by the clipboard and file transfer at use time; arrows keep this agent's `this`.
    const has = (cap: number) => this.caps.has(cap);
    const ready = () => this.state === 'ready';
    this.clipboard = new AgentClipboard({
      send: (type, payload) => this._pipe.send(type, payload),
      get selections() {
        return has(AgentCap.CLIPBOARD_SELECTION);
      },
      get crlf() {
        return has(AgentCap.GUEST_LINEEND_CRLF);
      },
      get ready() {
        return ready() && has(AgentCap.CLIPBOARD_BY_DEMAND);
      },
      maxSize: this._maxClipboard,
    });
    this.files = new AgentFileTransfer({
      send: (type, payload, o) => this._pipe.send(type, payload, o),
      drop: (tag, e) => this._pipe.drop(tag, e),
      whenBulkBelow: (n) => this._pipe.whenBulkBelow(n),
      get ready() {
        return ready();
      },
      get disabled() {
        return has(AgentCap.FILE_XFER_DISABLED);
      },
    });
  }

  /** Resolves once the agent announced its capabilities (rejects if the session ends first, or after timeoutMs). */
  whenReady(timeoutMs = 120_000): Promise<void> {
    if (this.state === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = {
        resolve: () => (cancel(), resolve()),
        reject: (e: Error) => (cancel(), reject(e)),
      };
      const cancel = startTimer(timeoutMs, () => {
        this._readyWaiters = this._readyWaiters.filter((x) => x !== w);
        reject(new Error(this.state === 'disconnected'
          ? `the SPICE agent is not running in the guest (none connected within ${Math.round(timeoutMs / 1000)} s): clipboard, `
            + 'file transfers and resizing need spice-vdagent in its desktop session; the display, keys and mouse still work'
          : `the guest's SPICE agent is there but did not announce its capabilities within ${Math.round(timeoutMs / 1000)} s`));
      });
      this._readyWaiters.push(w);
    });
  }

  /**
   * Asks the guest for this monitor layout (the first monitor is the primary one). Calls closer together than the
   * debounce are merged into the last one; sent once the agent is ready.
   */
  setMonitors(monitors: MonitorConfig[]): void {
    if (!monitors.length) throw new RangeError('at least one monitor');
    // The qxl driver wants widths that are a multiple of 8 (spice-gtk rounds down too); keep sizes sane.
    this._pendingMonitors = monitors.map((m) => ({ ...m, ...monitorSize(m.width, m.height) }));
    this._cancelResize?.();
    this._cancelResize = startTimer(this._debounceMs, () => {
      this._cancelResize = undefined;
      this._flushMonitors();
    });
  }

  /** Shorthand: one monitor of this size. */
  resize(width: number, height: number): void {
    this.setMonitors([{ width, height }]);
  }

  // ---- driven by the main channel ----

  /** The server's initial tokens and whether an agent is already connected (MAIN INIT). */
  init(connected: boolean, tokens: number): void {
    this._pipe.setServerTokens(tokens);
    if (connected) this._start();
  }

  /** AGENT_CONNECTED (tokens undefined) or AGENT_CONNECTED_TOKENS. */
  connected(tokens?: number): void {
    if (tokens !== undefined) this._pipe.setServerTokens(tokens);
    this._start();
  }

  disconnected(): void {
    this._stop(new Error('the guest agent disconnected'));
  }

  tokens(n: number): void {
    this._pipe.addServerTokens(n);
  }

  data(chunk: Uint8Array): void {
    if (this.state === 'disconnected') return;
    this._pipe.receive(chunk);
  }

  /** The main channel closed. */
  close(error?: Error): void {
    this._stop(error ?? new Error('the SPICE session ended'));
    this.clipboard.dispose();
    this.files.dispose();
    for (const e of [this._onState, this._onWarning]) e.dispose();
  }

  private _start(): void {
    if (this.state !== 'disconnected') return;
    this._setState('connecting');
    this._link.send(MainMsgc.AGENT_START, new Writer(4).u32(CLIENT_TOKEN_WINDOW).finish());
    void this._pipe.send(AgentMsg.ANNOUNCE_CAPABILITIES, encodeCaps(CLIENT_AGENT_CAPS, true)).catch(() => undefined);
  }

  private _stop(reason: Error): void {
    if (this.state === 'disconnected') return;
    this.caps = new Set();
    this._setState('disconnected');
    this._pipe.reset(reason);
    this.clipboard.reset(reason);
    this.files.reset();
  }

  private _setState(s: AgentState): void {
    this.state = s;
    this._onState.fire(s);
    if (s === 'ready') for (const w of this._readyWaiters.splice(0)) w.resolve();
  }

  private _dispatch(m: AgentMessage): void {
    switch (m.type) {
      case AgentMsg.ANNOUNCE_CAPABILITIES: {
        const { request, caps } = decodeCaps(m.data);
        this.caps = caps;
        if (request)
          void this._pipe
            .send(AgentMsg.ANNOUNCE_CAPABILITIES, encodeCaps(CLIENT_AGENT_CAPS, false))
            .catch(() => undefined);
        if (caps.has(AgentCap.MAX_CLIPBOARD)) {
          void this._pipe
            .send(AgentMsg.MAX_CLIPBOARD, new Writer(4).i32(this._maxClipboard).finish())
            .catch(() => undefined);
        }
        if (this.state !== 'ready') this._setState('ready');
        if (this._pendingMonitors && !this._cancelResize) this._flushMonitors();
        return;
      }
      case AgentMsg.CLIPBOARD_GRAB:
      case AgentMsg.CLIPBOARD_REQUEST:
      case AgentMsg.CLIPBOARD_RELEASE:
      case AgentMsg.CLIPBOARD:
        this.clipboard.handle(m.type, m.data);
        return;
      case AgentMsg.FILE_XFER_STATUS:
        this.files.handle(m.data);
        return;
      case AgentMsg.REPLY:
      case AgentMsg.GRAPHICS_DEVICE_INFO:
      case AgentMsg.AUDIO_VOLUME_SYNC:
        return;
      default:
        // An unknown message type from a newer agent is not an error: the protocol adds types over time.
        return;
    }
  }

  private _flushMonitors(): void {
    const monitors = this._pendingMonitors;
    if (!monitors || this.state !== 'ready') return;
    if (!this.caps.has(AgentCap.MONITORS_CONFIG)) {
      this._onWarning.fire('the guest agent cannot change the display size (no MONITORS_CONFIG capability)');
      this._pendingMonitors = undefined;
      return;
    }
    this._pendingMonitors = undefined;
    const flags = monitors.length > 1 || monitors.some((m) => m.x || m.y) ? MonitorsFlag.USE_POS : 0;
    void this._pipe.send(AgentMsg.MONITORS_CONFIG, encodeMonitors(monitors, flags)).catch(() => undefined);
  }
}
