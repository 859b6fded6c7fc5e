// The graphical console: a SPICE session (src/spice) drawn on a canvas, with keyboard, mouse and cursor. No UI
// framework: the page puts `element` where it wants and drives it through the methods below. This class wires the
// parts, each in its own file:
// - connection.ts: opens the session, reports status, reopens one that ended unasked (with backoff);
// - screen.ts: drawing (the surface blitted once per animation frame) and the layout (scale modes);
// - cursor.ts: the guest's cursor shape; key-input.ts: the keyboard; pointer.ts: the mouse;
// - guest-size.ts: "resize guest to window", and several monitors (side by side on one surface);
// - clipboard.ts and file-drop.ts: the guest agent's clipboard and files;
//   shared-folder.ts: the WebDAV share; audio.ts: sound both ways; usb.ts: WebUSB devices redirected to the VM.
// Typing text, key combinations, the switch to client mouse mode and asking the guest for a size are the core's
// ConsoleController (src/spice/console), the same one `oriel console` uses: this is a thin host of it.
import {
  ConsoleController,
  SpiceInputError,
  type AgentState,
  type InputsChannel,
  type MonitorHead,
  type SpiceAgent,
  type SpiceSession,
} from '../spice/index.ts';
import { ConsoleAudio } from './audio.ts';
import { ClipboardBridge } from './clipboard.ts';
import { ConsoleConnection, type ConsoleStatusEvent } from './connection.ts';
import { CursorView } from './cursor.ts';
import { FileQueue } from './file-drop.ts';
import { ConsoleShare } from './shared-folder.ts';
import { ConsoleUsb } from './usb.ts';
import { askGuestSize, askMonitors } from './guest-size.ts';
import { KeyInput } from './key-input.ts';
import { Pointer } from './pointer.ts';
import { Screen, type ScaleMode } from './screen.ts';
import { screenPicture } from './screen-preview.ts';
import { VIDEO_CODEC_NAMES } from './video-codecs.ts';

export type { ConsoleStatus, ConsoleStatusEvent } from './connection.ts';
export type { ScaleMode } from './screen.ts';

export interface SpiceConsoleOptions {
  /** The proxy path, /api/vms/NAME/spice. */
  path: string;
  /** Asked before every automatic reconnect; false: stay disconnected (e.g. the VM is stopped). */
  canReconnect?: (error: Error | undefined) => boolean;
  onStatus?: (e: ConsoleStatusEvent) => void;
  /** The guest screen's size changed. */
  onResize?: (width: number, height: number) => void;
  /** The server's mouse mode: client (absolute) or server (relative, pointer lock). */
  onMouseMode?: (mode: 'client' | 'server') => void;
  /** The guest agent came or went (disconnected also while there is no session). */
  onAgentState?: (state: AgentState) => void;
  /** The shared clipboard's state changed (console.clipboard). */
  onClipboardChange?: () => void;
  /** A file transfer was queued, moved on or ended (console.files). */
  onTransfersChange?: () => void;
  /** Mute or microphone state changed (console.audio). */
  onAudioChange?: () => void;
  /** A USB device was redirected or unplugged, or a message changed (console.usb). */
  onUsbChange?: () => void;
  /** The guest's monitors (heads: regions of the screen, side by side) as its display says (console.monitors). */
  onMonitors?: (heads: readonly MonitorHead[]) => void;
}

export class SpiceConsole {
  /** Focusable root: put it in the page. */
  readonly element: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  /** Counters, for the status bar and tests. */
  readonly stats = { keys: 0, mouse: 0, frames: 0, reconnects: 0, resizeRequests: 0 };
  mouseMode: 'client' | 'server' = 'server';
  /** The shared clipboard (guest ↔ this computer), with its panel state. */
  readonly clipboard: ClipboardBridge;
  /** Files sent to the guest, one after another. */
  readonly files: FileQueue;
  /** The folder shared over WebDAV, and the channel of fast file drops. */
  readonly shared = new ConsoleShare(() => this._opts.onTransfersChange?.());
  /** The guest's sound: playback, mute, microphone (audio.ts). */
  readonly audio: ConsoleAudio;
  /** USB devices of this computer redirected to the VM through WebUSB (usb.ts). */
  readonly usb = new ConsoleUsb(() => this._opts.onUsbChange?.());

  private readonly _screen: Screen;
  private readonly _cursor: CursorView;
  private readonly _pointer: Pointer;
  private readonly _keys: KeyInput;
  private readonly _connection: ConsoleConnection;
  private _controller: ConsoleController | undefined;
  private _monitorCount = 1;
  /** Whether the person chose the monitor count here; until then it follows the guest's (another client's choice). */
  private _monitorsChosen = false;
  private readonly _resizeObserver: ResizeObserver;
  private readonly _cleanups: (() => void)[] = [];

  constructor(private readonly _opts: SpiceConsoleOptions) {
    this.element = document.createElement('div');
    this.element.className = 'spice-console';
    this.element.tabIndex = 0;
    // The VM's screen as the server has it, shown until SPICE's first draw (screen-preview.ts).
    const picture = screenPicture(_opts.path);
    this._screen = new Screen({
      element: this.element,
      onFirstDraw: () => picture.abort(),
      onResize: _opts.onResize,
      onFrame: () => {
        this.stats.frames = this._screen.stats.frames;
        this._pointer.flush();
      },
      onLayout: () => this._cursor.place(),
    });
    this.canvas = this._screen.canvas;
    performance.mark('oriel:console');
    void picture.picture.then((bmp) => bmp && this._screen.showPicture(bmp)).catch(() => undefined);
    const box = this._screen.box;
    this._cursor = new CursorView({
      box,
      view: () => ({ mouseMode: this.mouseMode, locked: this._pointer.locked, scale: this._screen.scale }),
    });
    box.append(this._cursor.canvas);
    this.element.append(box);
    this._pointer = new Pointer({
      box,
      inputs: () => this._inputs,
      mouseMode: () => this.mouseMode,
      guestPoint: (e) => this._screen.guestPoint(e),
      schedule: () => this._screen.schedule(),
      focus: () => this.focus(),
      onSent: () => this.stats.mouse++,
    });
    this.clipboard = new ClipboardBridge({ element: this.element, onChange: () => this._opts.onClipboardChange?.() });
    this._keys = new KeyInput({
      element: this.element,
      clipboard: this.clipboard,
      inputs: () => this._inputs,
      onKeyDown: () => this.stats.keys++,
    });
    this.audio = new ConsoleAudio(() => this._opts.onAudioChange?.());
    this.files = new FileQueue({
      agent: () => this.agent, share: () => this.shared.share, onChange: () => this._opts.onTransfersChange?.(),
    });
    this._connection = new ConsoleConnection({
      path: _opts.path,
      canReconnect: _opts.canReconnect,
      onStatus: (e) => {
        this.element.dataset.status = e.status;
        this.stats.reconnects = this._connection.stats.reconnects;
        this._opts.onStatus?.(e);
      },
      onSession: (s) => (s ? this._attach(s) : this._detach()),
    });

    this._listen(this.element, 'keydown', (e) => this._keys.onKey(e as KeyboardEvent, true));
    this._listen(this.element, 'keyup', (e) => this._keys.onKey(e as KeyboardEvent, false));
    this._listen(this.element, 'blur', () => this._releaseAll());
    this._listen(box, 'mousemove', (e) => this._pointer.onMove(e as MouseEvent));
    this._listen(box, 'mousedown', (e) => this._pointer.onButton(e as MouseEvent, true));
    this._listen(window, 'mouseup', (e) => this._pointer.onButton(e as MouseEvent, false));
    this._listen(box, 'wheel', (e) => this._pointer.onWheel(e as WheelEvent), { passive: false });
    this._listen(box, 'contextmenu', (e) => e.preventDefault());
    this._listen(document, 'pointerlockchange', () => {
      this._pointer.locked = document.pointerLockElement === box;
      this._cursor.update();
    });
    this._listen(document, 'fullscreenchange', () => {
      this._keys.lockKeys(document.fullscreenElement === this.element);
      this._screen.layout();
    });
    this._listen(document, 'visibilitychange', () => { if (document.hidden) this._releaseAll(); });
    this._resizeObserver = new ResizeObserver(() => {
      this._screen.layout();
      this._askGuestSize();
    });
    this._resizeObserver.observe(this.element);
  }

  get status(): ConsoleStatusEvent {
    return this._connection.status;
  }

  /** The guest agent of the current session (state 'ready' when usable), if connected. */
  get agent(): SpiceAgent | undefined {
    return this._connection.session?.agent;
  }

  get agentState(): AgentState {
    return this.agent?.state ?? 'disconnected';
  }

  /** Opens the session (and keeps it open: reconnects until disconnect()). */
  connect(): void {
    this._connection.connect();
  }

  disconnect(): void {
    this._connection.disconnect();
  }

  /** Reconnects at once if the console is waiting to (e.g. the VM was started again). */
  reconnectNow(): void {
    this._connection.reconnectNow();
  }

  dispose(): void {
    this.disconnect();
    this.clipboard.dispose();
    this.files.dispose();
    this.audio.dispose();
    this.usb.dispose();
    this._screen.dispose();
    this._resizeObserver.disconnect();
    for (const c of this._cleanups.splice(0)) c();
    if (document.pointerLockElement === this._screen.box) document.exitPointerLock();
    this.element.remove();
  }

  get scaleMode(): ScaleMode {
    return this._screen.scaleMode;
  }

  set scaleMode(m: ScaleMode) {
    this._screen.scaleMode = m;
    this._screen.layout();
    this._askGuestSize(true);
  }

  /**
   * Monitors to show (1 to MAX_HEADS; Oriel's qxl VMs have two): asked of the guest through its agent, side by side
   * on its one screen. In 'remote' the console area is shared between them; otherwise each gets the first one's size.
   */
  get monitorCount(): number {
    return this._monitorCount;
  }

  set monitorCount(n: number) {
    this._monitorCount = n;
    this._monitorsChosen = true;
    this._askGuestSize(true, true);
  }

  /** The guest's monitors as its display's MONITORS_CONFIG lists them: each a region of the screen (canvas). */
  get monitors(): readonly MonitorHead[] {
    return this._connection.session?.display?.heads ?? [];
  }

  /** The size last asked of the guest (scale mode 'remote'). */
  get requestedSize(): { width: number; height: number } | undefined {
    return this._controller?.requestedSize;
  }

  /** The console area's size in CSS pixels: what 'remote' asks the guest for. */
  get areaSize(): { width: number; height: number } {
    return { width: this.element.clientWidth, height: this.element.clientHeight };
  }

  /** Guest screen size in pixels, once known. */
  get screenSize(): { width: number; height: number } | undefined {
    return this._screen.size;
  }

  focus(): void {
    this.element.focus();
  }

  async toggleFullscreen(): Promise<void> {
    if (document.fullscreenElement) await document.exitFullscreen();
    else await this.element.requestFullscreen();
    this.focus();
  }

  /** Presses the keys in order and releases them in reverse (send-key menu). */
  sendKeys(codes: string[]): void {
    if (this._inputs) void this._controller?.pressKeys(codes).then(() => (this.stats.keys += codes.length));
    this.focus();
  }

  /**
   * Types `text` as US-keyboard keystrokes, paced for the guest; resolves with the characters typed. Text with a
   * character that layout has no key for is refused (SpiceInputError, nothing typed), as `oriel console type` does.
   */
  typeText(text: string): Promise<number> {
    const c = this._controller;
    if (!c || !this._inputs) return Promise.reject(new SpiceInputError('the console is not connected'));
    this._releaseAll();
    return c.typeText(text, { onStroke: () => this.stats.keys++ });
  }

  private get _inputs(): InputsChannel | undefined {
    return this._connection.session?.inputs;
  }

  private _attach(session: SpiceSession): void {
    this.shared.attach(session);
    const onChannel = (ch: { type: number }) => {
      if (ch === session.display) {
        this._screen.attach(session.display);
        session.display.onMonitorsConfig((heads) => {
          this.element.dataset.monitors = String(heads.length);
          if (!this._monitorsChosen && heads.length) this._monitorCount = heads.length;
          this._opts.onMonitors?.(heads);
        });
      }
      else if (ch === session.cursor) this._cursor.attach(session.cursor);
      else if (ch === session.inputs) this._keys.attach(session.inputs);
    };
    session.onChannel(onChannel);
    for (const ch of session.channels.values()) onChannel(ch);
    const controller = new ConsoleController(session, { preferClientMouse: true });
    this._controller = controller;
    controller.onMouseMode((mode) => this._onMouseMode(mode));
    this._onMouseMode(controller.mouseMode);
    session.onChannelError(({ channel, error }) => this._connection.note(session, `${channel}: ${error.message}`));
    const agent = session.agent;
    this.clipboard.attach(agent);
    this.audio.attach(session);
    this.usb.attach(session);
    agent.onState((st) => {
      if (this._controller !== controller) return;
      this.element.dataset.agent = st;
      if (st === 'ready') this._askGuestSize();
      this._opts.onAgentState?.(st);
    });
    this.element.dataset.agent = agent.state;
    this._opts.onAgentState?.(agent.state);
    if (agent.state === 'ready') this._askGuestSize();
  }

  private _detach(): void {
    this._releaseAll();
    this._controller?.dispose();
    this._controller = undefined;
    this.clipboard.attach(undefined);
    this.audio.attach(undefined);
    this.usb.attach(undefined);
    this._opts.onAgentState?.('disconnected');
  }

  /**
   * Scale mode 'remote': asks the guest for the console area's size, shared by the monitors (again, after the mode
   * or the monitor count was chosen anew). Other modes ask only when the monitor count was chosen (`chosen`): a
   * change of scale mode never changes the guest's monitors.
   */
  private _askGuestSize(again = false, chosen = false): void {
    if (again && this._controller) this._controller.forgetRequestedSize();
    const n = this._monitorCount;
    const asked = this._screen.scaleMode === 'remote'
      ? askGuestSize(this._controller, this.areaSize, n)
      : chosen && askMonitors(this._controller, this.monitors, n);
    if (asked) this.stats.resizeRequests++;
  }

  private _onMouseMode(mode: 'client' | 'server'): void {
    this.mouseMode = mode;
    if (mode === 'client' && this._pointer.locked) document.exitPointerLock();
    this.element.dataset.mouseMode = mode;
    this._opts.onMouseMode?.(mode);
    this._cursor.update();
  }

  /**
   * Video stream frames drawn in this session, by codec ('mjpeg', 'vp8', 'h264', 'vp9'), and the streams' counters
   * (created, destroyed, dropped, failed …, and `playing` now).
   */
  get videoStats(): { decoded: Record<string, number>; streams: Record<string, number>; lastError?: string } {
    const display = this._connection.session?.display;
    const d = display?.displayStats;
    const decoded: Record<string, number> = {};
    for (const k of ['mjpeg', ...Object.keys(VIDEO_CODEC_NAMES)]) decoded[k] = d?.decoded[k] ?? 0;
    const streams = { ...d?.streams, playing: display?.streams.streams.size ?? 0 };
    return { decoded, streams, lastError: display?.streams.lastError };
  }

  /** Images decoded in this session, by image type ('jpeg', 'quic', 'glz_rgb', 'zlib_glz_rgb', 'lz_rgb' …). */
  get imageStats(): Record<string, number> {
    return { ...this._connection.session?.display?.displayStats.decoded };
  }

  /**
   * Asks the server to stream new video in these codecs first ('vp8', 'h264', 'vp9'; MJPEG stays the last resort);
   * codecs this browser cannot decode are left out. False if not connected or the server cannot be asked.
   */
  preferVideoCodecs(names: string[]): boolean {
    const codecs = names.map((n) => VIDEO_CODEC_NAMES[n]).filter((c): c is number => c !== undefined);
    return this._connection.session?.display?.setPreferredVideoCodecs(codecs) ?? false;
  }

  /** Releases in the guest every key and button held through this console. */
  private _releaseAll(): void {
    const inputs = this._controller?.session.inputs;
    this._keys.releaseAll(inputs);
    this._pointer.releaseAll(inputs);
  }

  private _listen(target: EventTarget, type: string, fn: (e: Event) => void, opts?: AddEventListenerOptions): void {
    target.addEventListener(type, fn, opts);
    this._cleanups.push(() => target.removeEventListener(type, fn, opts));
  }
}
