// The graphical console: a SPICE session (src/spice) drawn on a canvas, with keyboard, mouse and cursor. No UI
// framework: the page puts `element` where it wants and drives it through the methods below.
//
// - Drawing: the display channel draws into an RgbaSurface (the core's plain RGBA buffer); an ImageData over the
//   same memory is blitted to the canvas once per animation frame, only the rectangle that changed.
// - Keyboard (key-input.ts): captured while the console has focus, sent by physical position (KeyboardEvent.code →
//   set-1 scancode, keymap.ts), so the guest's layout decides the characters. Keys held when focus leaves are released.
// - Mouse: absolute positions when the server is in client mouse mode (a tablet or the agent in the guest),
//   relative motion otherwise, with pointer lock once the console is clicked (Esc releases it).
// - Cursor: the guest's cursor shape from the cursor channel; as the local CSS cursor in client mode, drawn over
//   the screen in server mode.
// - Connection: status changes are reported; a session that ends unasked is reopened with backoff while
//   `canReconnect()` says the VM still runs.
// - The guest agent (spice-vdagent, when the guest runs it): a shared clipboard (clipboard.ts), files sent to the
//   guest (file-drop.ts), and "resize guest to window": the console area's size is asked of the guest whenever it
//   changes, and the guest's screen is then shown 1:1.
import {
  MouseButton,
  MouseButtonMask,
  MouseMode,
  RgbaSurface,
  SpiceSession,
  type AgentState,
  type CursorChannel,
  type CursorState,
  type DisplayChannel,
  type InputsChannel,
  type Rect,
  type SpiceAgent,
} from '../../spice/index.ts';
import { ClipboardBridge } from './clipboard.ts';
import { FileQueue } from './file-drop.ts';
import { ConsoleShare } from './shared-folder.ts';
import { KeyInput } from './key-input.ts';
import { openSession, takePreconnected } from './preconnect.ts';

export type ConsoleStatus = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'disconnected';
export interface ConsoleStatusEvent {
  status: ConsoleStatus;
  /** Why the last session ended or failed, when it did. */
  message?: string;
  /** reconnecting: when the next attempt is made. */
  retryInMs?: number;
}
/** fit: scaled to the area; none: 1:1 with scroll bars; remote: the guest is asked for the area's size, shown 1:1. */
export type ScaleMode = 'fit' | 'none' | 'remote';

export interface SpiceConsoleOptions {
  /** The proxy path, /api/vms/NAME/spice. */
  path: string;
  /** Asked before every automatic reconnect; false: stay disconnected (e.g. the VM is stopped). */
  canReconnect?: () => boolean;
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
}

const RETRY_MS = [500, 1000, 2000, 4000, 8000];
/** A session not linked by then (main channel linked and MAIN INIT received) is abandoned and retried. */
const CONNECT_TIMEOUT_MS = 10_000;

export class SpiceConsole {
  /** Focusable root: put it in the page. */
  readonly element: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  /** Counters, for the status bar and tests. */
  readonly stats = { keys: 0, mouse: 0, frames: 0, reconnects: 0, resizeRequests: 0 };
  status: ConsoleStatusEvent = { status: 'idle' };
  mouseMode: 'client' | 'server' = 'server';
  /** The shared clipboard (guest ↔ this computer), with its panel state. */
  readonly clipboard: ClipboardBridge;
  /** Files sent to the guest, one after another. */
  readonly files: FileQueue;
  /** The folder shared over WebDAV, and the channel of fast file drops. */
  readonly shared = new ConsoleShare(() => this._opts.onTransfersChange?.());
  /** The size last asked of the guest (scale mode 'remote'). */
  requestedSize: { width: number; height: number } | undefined;

  private readonly _screen: HTMLDivElement;
  private readonly _cursor: HTMLCanvasElement;
  private readonly _ctx: CanvasRenderingContext2D;
  private _session: SpiceSession | undefined;
  private _surface: { id: number; rgba: RgbaSurface; image: ImageData } | undefined;
  private _dirty: Rect | null = null;
  private _raf = 0;
  private _scaleMode: ScaleMode = 'fit';
  private _scale = 1;
  private _buttons = 0;
  private _motion: { dx: number; dy: number } = { dx: 0, dy: 0 };
  private _position: { x: number; y: number } | null = null;
  private _locked = false;
  private _cursorState: CursorState | undefined;
  private _cursorUrl = '';
  private _wanted = false;
  private _generation = 0;
  private _attempt = 0;
  private _retryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly _resizeObserver: ResizeObserver;
  private readonly _cleanups: (() => void)[] = [];
  private readonly _keys: KeyInput;

  constructor(private readonly _opts: SpiceConsoleOptions) {
    this.element = document.createElement('div');
    this.element.className = 'spice-console';
    this.element.tabIndex = 0;
    this._screen = document.createElement('div');
    this._screen.className = 'spice-screen';
    this.canvas = document.createElement('canvas');
    this.canvas.id = 'console-canvas';
    this.canvas.width = 640;
    this.canvas.height = 400;
    this._cursor = document.createElement('canvas');
    this._cursor.className = 'spice-cursor';
    this._cursor.hidden = true;
    this._screen.append(this.canvas, this._cursor);
    this.element.append(this._screen);
    this._ctx = this.canvas.getContext('2d', { alpha: false })!;
    this._ctx.fillStyle = '#000';
    this._ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);

    this._listen(this.element, 'keydown', (e) => this._keys.onKey(e as KeyboardEvent, true));
    this._listen(this.element, 'keyup', (e) => this._keys.onKey(e as KeyboardEvent, false));
    this._listen(this.element, 'blur', () => this._releaseAll());
    this._listen(this._screen, 'mousemove', (e) => this._onMouseMove(e as MouseEvent));
    this._listen(this._screen, 'mousedown', (e) => this._onMouseButton(e as MouseEvent, true));
    this._listen(window, 'mouseup', (e) => this._onMouseButton(e as MouseEvent, false));
    this._listen(this._screen, 'wheel', (e) => this._onWheel(e as WheelEvent), { passive: false });
    this._listen(this._screen, 'contextmenu', (e) => e.preventDefault());
    this._listen(document, 'pointerlockchange', () => {
      this._locked = document.pointerLockElement === this._screen;
      this._updateCursor();
    });
    this._listen(document, 'fullscreenchange', () => this._onFullscreenChange());
    this._listen(document, 'visibilitychange', () => { if (document.hidden) this._releaseAll(); });
    this._resizeObserver = new ResizeObserver(() => {
      this._layout();
      this._askGuestSize();
    });
    this._resizeObserver.observe(this.element);
    this.clipboard = new ClipboardBridge({ element: this.element, onChange: () => this._opts.onClipboardChange?.() });
    this._keys = new KeyInput({
      element: this.element,
      clipboard: this.clipboard,
      inputs: () => this._inputs,
      onKeyDown: () => this.stats.keys++,
    });
    this.files = new FileQueue({
      agent: () => this.agent, share: () => this.shared.share, onChange: () => this._opts.onTransfersChange?.(),
    });
  }

  /** The guest agent of the current session (state 'ready' when usable), if connected. */
  get agent(): SpiceAgent | undefined {
    return this._session?.agent;
  }

  get agentState(): AgentState {
    return this._session?.agent.state ?? 'disconnected';
  }

  /** Opens the session (and keeps it open: reconnects until disconnect()). */
  connect(): void {
    this._wanted = true;
    this._attempt = 0;
    clearTimeout(this._retryTimer);
    void this._open();
  }

  disconnect(): void {
    this._wanted = false;
    this._generation++;
    clearTimeout(this._retryTimer);
    this._releaseAll();
    const s = this._session;
    this._session = undefined;
    s?.close();
    this.clipboard.attach(undefined);
    this._opts.onAgentState?.('disconnected');
    this._setStatus({ status: 'disconnected' });
  }

  /** Reconnects at once if the console is waiting to (e.g. the VM was started again). */
  reconnectNow(): void {
    // Only while waiting for the next attempt: an attempt in flight is left alone (two would kick each other out:
    // spice-server serves one client).
    if (!this._wanted || this._session || this.status.status !== 'reconnecting' || this.status.retryInMs === undefined)
      return;
    clearTimeout(this._retryTimer);
    void this._open();
  }

  dispose(): void {
    this.disconnect();
    this.clipboard.dispose();
    this.files.dispose();
    cancelAnimationFrame(this._raf);
    this._resizeObserver.disconnect();
    for (const c of this._cleanups.splice(0)) c();
    if (document.pointerLockElement === this._screen) document.exitPointerLock();
    this.element.remove();
  }

  get scaleMode(): ScaleMode {
    return this._scaleMode;
  }

  set scaleMode(m: ScaleMode) {
    this._scaleMode = m;
    this.requestedSize = undefined;
    this._layout();
    this._askGuestSize();
  }

  /** The console area's size in CSS pixels: what 'remote' asks the guest for. */
  get areaSize(): { width: number; height: number } {
    return { width: this.element.clientWidth, height: this.element.clientHeight };
  }

  /** Guest screen size in pixels, once known. */
  get screenSize(): { width: number; height: number } | undefined {
    return this._surface ? { width: this._surface.rgba.width, height: this._surface.rgba.height } : undefined;
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
    this._keys.sendKeys(codes);
    this.focus();
  }

  /** Types `text` as US-keyboard keystrokes, paced for the guest. Resolves with how many characters had no key. */
  typeText(text: string): Promise<{ typed: number; skipped: number }> {
    this._releaseAll();
    return this._keys.typeText(text);
  }

  // --- connection ---------------------------------------------------------------------------------------------

  private get _inputs(): InputsChannel | undefined {
    return this._session?.inputs;
  }

  private _setStatus(e: ConsoleStatusEvent): void {
    this.status = e;
    this.element.dataset.status = e.status;
    this._opts.onStatus?.(e);
  }

  private async _open(): Promise<void> {
    const gen = ++this._generation;
    this._setStatus({ status: this._attempt ? 'reconnecting' : 'connecting', message: this.status.message });
    let connecting: Promise<SpiceSession> | undefined;
    try {
      // The first attempt takes over the session the page's script started (preconnect.ts), if there is one.
      const early = this._attempt ? undefined : takePreconnected(this._opts.path);
      connecting = early ? early.catch(() => openSession(this._opts.path)) : openSession(this._opts.path);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const session = await Promise.race([
        connecting,
        new Promise<never>(
          (_, reject) =>
            (timer = setTimeout(() => reject(new Error('the console did not answer')), CONNECT_TIMEOUT_MS)),
        ),
      ]).finally(() => clearTimeout(timer));
      if (gen !== this._generation || !this._wanted) {
        session.close();
        return;
      }
      this._session = session;
      if (this._attempt) this.stats.reconnects++;
      this._attempt = 0;
      this._attach(session);
      this._setStatus({ status: 'connected' });
    } catch (e) {
      if (gen !== this._generation) return;
      // A session that links after the timeout is closed when it does.
      void connecting?.then((late) => { if (this._session !== late) late.close(); }, () => undefined);
      this._retry(e as Error);
    }
  }

  private _retry(error: Error | undefined): void {
    this._session = undefined;
    this._releaseAll();
    this.clipboard.attach(undefined);
    this._opts.onAgentState?.('disconnected');
    const message = error?.message ?? 'the console closed';
    if (!this._wanted || (this._opts.canReconnect && !this._opts.canReconnect())) {
      this._setStatus({ status: 'disconnected', message });
      return;
    }
    const delay = RETRY_MS[Math.min(this._attempt, RETRY_MS.length - 1)]!;
    this._attempt++;
    this._setStatus({ status: 'reconnecting', message, retryInMs: delay });
    this._retryTimer = setTimeout(() => void this._open(), delay);
  }

  private _attach(session: SpiceSession): void {
    this.shared.attach(session);
    const onChannel = (ch: { type: number }) => {
      if (ch === session.display) this._attachDisplay(session.display);
      else if (ch === session.cursor) this._attachCursor(session.cursor);
      else if (ch === session.inputs) this._keys.attach(session.inputs);
    };
    session.onChannel(onChannel);
    for (const ch of session.channels.values()) onChannel(ch);
    const mm = session.main.mouseMode;
    if (mm) this._onMouseMode(mm.supported, mm.current);
    session.main.onMouseMode((m) => this._onMouseMode(m.supported, m.current));
    session.onChannelError(({ channel, error }) => {
      if (this._session === session) this._setStatus({ ...this.status, message: `${channel}: ${error.message}` });
    });
    session.onClose((error) => {
      if (this._session !== session) return;
      this._retry(error);
    });
    const agent = session.agent;
    this.requestedSize = undefined;
    this.clipboard.attach(agent);
    agent.onState((st) => {
      if (this._session !== session) return;
      this.element.dataset.agent = st;
      if (st === 'ready') {
        this.requestedSize = undefined;
        this._askGuestSize();
      }
      this._opts.onAgentState?.(st);
    });
    this.element.dataset.agent = agent.state;
    this._opts.onAgentState?.(agent.state);
    if (agent.state === 'ready') this._askGuestSize();
  }

  /** Scale mode 'remote': asks the guest (through its agent; debounced there) for the console area's size. */
  private _askGuestSize(): void {
    if (this._scaleMode !== 'remote') return;
    const agent = this.agent;
    if (!agent || agent.state !== 'ready') return;
    const { width, height } = this.areaSize;
    if (width < 64 || height < 64) return; // hidden, or being laid out
    // The agent rounds the width down to a multiple of 8 (the qxl driver's rule); compare what will be sent.
    const want = { width: Math.floor(width / 8) * 8, height };
    const r = this.requestedSize;
    if (r && r.width === want.width && r.height === want.height) return;
    this.requestedSize = want;
    this.stats.resizeRequests++;
    agent.resize(width, height);
  }

  private _onMouseMode(supported: number, current: number): void {
    // Absolute is better whenever the guest can take it: no pointer lock, the local cursor is exact.
    if (current !== MouseMode.CLIENT && supported & MouseMode.CLIENT)
      this._session?.main.requestMouseMode(MouseMode.CLIENT);
    this.mouseMode = current === MouseMode.CLIENT ? 'client' : 'server';
    if (this.mouseMode === 'client' && this._locked) document.exitPointerLock();
    this.element.dataset.mouseMode = this.mouseMode;
    this._opts.onMouseMode?.(this.mouseMode);
    this._updateCursor();
  }

  // --- display --------------------------------------------------------------------------------------------------

  private _attachDisplay(d: DisplayChannel): void {
    const take = () => {
      const p = d.primary;
      if (p && p.surface instanceof RgbaSurface) this._useSurface(p.info.id, p.surface);
    };
    take();
    d.onSurfaceCreated((info) => { if (info.primary) take(); });
    d.onInvalidate((ev) => {
      if (this._surface && ev.surfaceId === this._surface.id) this._markDirty(ev.rect);
    });
  }

  private _useSurface(id: number, rgba: RgbaSurface): void {
    // The same memory the display channel draws into: no copy per frame.
    const data = new Uint8ClampedArray(
      rgba.data.buffer as ArrayBuffer,
      rgba.data.byteOffset,
      rgba.width * rgba.height * 4,
    );
    this._surface = { id, rgba, image: new ImageData(data, rgba.width, rgba.height) };
    if (this.canvas.width !== rgba.width || this.canvas.height !== rgba.height) {
      this.canvas.width = rgba.width;
      this.canvas.height = rgba.height;
      this._opts.onResize?.(rgba.width, rgba.height);
    }
    this._layout();
    this._markDirty({ left: 0, top: 0, right: rgba.width, bottom: rgba.height });
  }

  private _markDirty(r: Rect): void {
    const d = this._dirty;
    this._dirty = d
      ? {
          left: Math.min(d.left, r.left),
          top: Math.min(d.top, r.top),
          right: Math.max(d.right, r.right),
          bottom: Math.max(d.bottom, r.bottom),
        }
      : { ...r };
    this._schedule();
  }

  private _schedule(): void {
    if (!this._raf) this._raf = requestAnimationFrame(() => this._frame());
  }

  private _frame(): void {
    this._raf = 0;
    const d = this._dirty;
    this._dirty = null;
    const s = this._surface;
    if (d && s) {
      this._ctx.putImageData(s.image, 0, 0, d.left, d.top, d.right - d.left, d.bottom - d.top);
      this.stats.frames++;
    }
    this._flushMotion();
  }

  private _layout(): void {
    const w = this.canvas.width;
    const h = this.canvas.height;
    const box = this.element.getBoundingClientRect();
    const sized = box.width > 0 && box.height > 0;
    // 'remote' shows the guest 1:1 once it took the area's size; until then (or if it cannot) it is scaled down
    // to fit, never up.
    if (this._scaleMode === 'fit' && sized) this._scale = Math.min(box.width / w, box.height / h);
    else if (this._scaleMode === 'remote' && sized) this._scale = Math.min(1, box.width / w, box.height / h);
    else this._scale = 1;
    this._screen.style.width = `${Math.floor(w * this._scale)}px`;
    this._screen.style.height = `${Math.floor(h * this._scale)}px`;
    this.element.dataset.scale = this._scaleMode;
    this._placeCursor();
  }

  // --- cursor ---------------------------------------------------------------------------------------------------

  private _attachCursor(c: CursorChannel): void {
    let shape: CursorState['shape'] | undefined;
    const update = (s: CursorState) => {
      this._cursorState = s;
      if (s.shape !== shape) {
        shape = s.shape;
        if (shape) {
          this._cursor.width = shape.image.width;
          this._cursor.height = shape.image.height;
          const px = new Uint8ClampedArray(shape.image.data.length);
          px.set(shape.image.data);
          const img = new ImageData(px, shape.image.width, shape.image.height);
          this._cursor.getContext('2d')!.putImageData(img, 0, 0);
          this._cursorUrl = `url(${this._cursor.toDataURL()}) ${shape.hotX} ${shape.hotY}, default`;
        } else {
          this._cursorUrl = '';
        }
      }
      this._updateCursor();
    };
    update(c.state);
    c.onChange(update);
  }

  private _updateCursor(): void {
    const s = this._cursorState;
    if (this.mouseMode === 'client') {
      // The local pointer is where the guest's is: show the guest's shape as the local cursor.
      this._cursor.hidden = true;
      this._screen.style.cursor = s && !s.visible ? 'none' : this._cursorUrl || 'default';
    } else {
      this._screen.style.cursor = this._locked ? 'none' : 'crosshair';
      this._cursor.hidden = !(s?.visible && s.shape);
      this._placeCursor();
    }
  }

  private _placeCursor(): void {
    const s = this._cursorState;
    if (!s?.shape || this._cursor.hidden) return;
    const k = this._scale;
    Object.assign(this._cursor.style, {
      left: `${(s.x - s.shape.hotX) * k}px`,
      top: `${(s.y - s.shape.hotY) * k}px`,
      width: `${s.shape.image.width * k}px`,
      height: `${s.shape.image.height * k}px`,
    });
  }

  // --- keyboard -------------------------------------------------------------------------------------------------

  private _releaseAll(): void {
    const inputs = this._inputs;
    this._keys.releaseAll(inputs);
    if (inputs) {
      for (const [bit, button] of [
        [MouseButtonMask.LEFT, MouseButton.LEFT],
        [MouseButtonMask.MIDDLE, MouseButton.MIDDLE],
        [MouseButtonMask.RIGHT, MouseButton.RIGHT],
      ] as const) {
        if (this._buttons & bit) inputs.mouseRelease(button, this._buttons &= ~bit);
      }
    }
    this._buttons = 0;
  }

  private _onFullscreenChange(): void {
    this._keys.lockKeys(document.fullscreenElement === this.element);
    this._layout();
  }

  // --- mouse ----------------------------------------------------------------------------------------------------

  private _guestPoint(e: MouseEvent): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    const x = Math.floor(((e.clientX - r.left) / r.width) * this.canvas.width);
    const y = Math.floor(((e.clientY - r.top) / r.height) * this.canvas.height);
    return { x: Math.max(0, Math.min(this.canvas.width - 1, x)), y: Math.max(0, Math.min(this.canvas.height - 1, y)) };
  }

  private _onMouseMove(e: MouseEvent): void {
    if (this.mouseMode === 'client') this._position = this._guestPoint(e);
    else {
      // Relative: movementX/Y are device deltas; with pointer lock they are all there is.
      this._motion.dx += e.movementX;
      this._motion.dy += e.movementY;
    }
    this._schedule();
  }

  private _flushMotion(): void {
    const inputs = this._inputs;
    if (!inputs) return;
    if (this.mouseMode === 'client' && this._position) {
      if (inputs.mousePosition(this._position.x, this._position.y, this._buttons)) {
        this._position = null;
        this.stats.mouse++;
      } else this._schedule();
    } else if (this.mouseMode === 'server' && (this._motion.dx || this._motion.dy)) {
      if (inputs.mouseMotion(this._motion.dx, this._motion.dy, this._buttons)) {
        this._motion = { dx: 0, dy: 0 };
        this.stats.mouse++;
      } else this._schedule();
    }
  }

  private _onMouseButton(e: MouseEvent, down: boolean): void {
    const map: Record<number, [number, number]> = {
      0: [MouseButton.LEFT, MouseButtonMask.LEFT],
      1: [MouseButton.MIDDLE, MouseButtonMask.MIDDLE],
      2: [MouseButton.RIGHT, MouseButtonMask.RIGHT],
    };
    const b = map[e.button];
    if (!b) return;
    if (down) {
      e.preventDefault();
      this.focus();
      if (this.mouseMode === 'server' && !this._locked) {
        // Returns a promise in Chromium, undefined elsewhere; refusal just leaves hover-relative motion.
        try {
          void (this._screen.requestPointerLock() as unknown as Promise<void> | undefined)?.catch(() => undefined);
        } catch {
          /* no pointer lock */
        }
      }
    } else if (!(this._buttons & b[1])) {
      return; // a release of a press that did not start on the console
    }
    const inputs = this._inputs;
    if (!inputs) return;
    if (this.mouseMode === 'client') this._position = this._guestPoint(e);
    this._flushMotion();
    this._buttons = down ? this._buttons | b[1] : this._buttons & ~b[1];
    if (down) inputs.mousePress(b[0], this._buttons);
    else inputs.mouseRelease(b[0], this._buttons);
    this.stats.mouse++;
  }

  private _onWheel(e: WheelEvent): void {
    e.preventDefault();
    const inputs = this._inputs;
    if (!inputs || e.deltaY === 0) return;
    const [button, mask] =
      e.deltaY < 0 ? [MouseButton.UP, MouseButtonMask.UP] : [MouseButton.DOWN, MouseButtonMask.DOWN];
    inputs.mousePress(button, this._buttons | mask);
    inputs.mouseRelease(button, this._buttons);
    this.stats.mouse++;
  }

  private _listen(target: EventTarget, type: string, fn: (e: Event) => void, opts?: AddEventListenerOptions): void {
    target.addEventListener(type, fn, opts);
    this._cleanups.push(() => target.removeEventListener(type, fn, opts));
  }
}
