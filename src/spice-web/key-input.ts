// The console's keyboard: keys captured while the console has focus go to the guest by physical position
// (KeyboardEvent.code → set-1 scancode, keymap.ts), so the guest's layout decides the characters. Also here: the
// guest's modifiers and Caps Lock kept in step with the local ones, Windows' AltGr (ControlLeft + AltRight) sent as
// AltGr alone, and a paste shortcut held back until the browser's paste event has set the guest's clipboard. Typing
// text and key combinations (the Type box, the send-key menu) are the core's ConsoleController's.
import { KeyModifier, type InputsChannel } from '../spice/index.ts';
import type { ClipboardBridge } from './clipboard.ts';
import { scancodeOf } from './keymap.ts';

/** Windows reports AltGr as ControlLeft + AltRight at the same instant; this close means "the same". */
const ALTGR_WINDOW_MS = 50;
const IS_WINDOWS = typeof navigator !== 'undefined' && /Win/.test(navigator.platform);
/** How long a paste shortcut waits for the browser's paste event (it comes at once, or never). */
const PASTE_WAIT_MS = 250;
/** After the guest's clipboard was taken, before the paste keys go: the grab reaches the agent first. */
const PASTE_SETTLE_MS = 30;
/** What the keyboard needs of its console. */
export interface KeyInputHost {
  /** The focusable console element (its paste events). */
  element: HTMLElement;
  clipboard: ClipboardBridge;
  /** The current session's inputs channel, if any. */
  inputs(): InputsChannel | undefined;
  /** Counts a key pressed in the guest. */
  onKeyDown(): void;
}

export class KeyInput {
  /** Scancodes pressed in the guest and not yet released. */
  private readonly _pressed = new Set<number>();
  private _heldCtrl: { timeStamp: number; timer: ReturnType<typeof setTimeout> } | undefined;
  private _droppedCtrl = false;
  private _guestCaps: boolean | undefined;
  /** Key events held back while a paste shortcut waits for the browser's paste event. */
  private _keyQueue: (() => void)[] | null = null;
  private _pasteSeen = false;

  constructor(private readonly _h: KeyInputHost) {}

  /** Keyboard Lock (Chromium): in fullscreen, Esc, Alt+Tab, Ctrl+W ... go to the guest, not the browser. */
  lockKeys(fullscreen: boolean): void {
    const kb = (navigator as Navigator & { keyboard?: { lock?: () => Promise<void>; unlock?: () => void } }).keyboard;
    if (fullscreen) void kb?.lock?.().catch(() => undefined);
    else kb?.unlock?.();
  }

  /** Releases in the guest every key pressed through this console (focus left, typing text, session ended). */
  releaseAll(inputs: InputsChannel | undefined): void {
    if (inputs) for (const sc of this._pressed) inputs.keyUp(sc);
    this._pressed.clear();
  }

  /** A keydown or keyup on the console element. */
  onKey(e: KeyboardEvent, down: boolean): void {
    if (e.isComposing) return;
    const sc = scancodeOf(e.code);
    if (sc === undefined) return;
    e.stopPropagation();
    if (this._keyQueue) {
      // A paste shortcut waits for its paste event: later keys keep their order behind it.
      e.preventDefault();
      this._keyQueue.push(() => this._keyNow(sc, down, e));
      return;
    }
    if (down && this._isPasteShortcut(e) && this._h.clipboard.available) {
      // Let the browser fire its paste event (no preventDefault): its clipboardData needs no permission. The guest's
      // clipboard is taken with it before the keys go, so the guest pastes what the person copied here.
      this._keyQueue = [];
      this._pasteSeen = false;
      let done = false;
      const release = () => {
        if (done) return;
        done = true;
        this._h.element.removeEventListener('paste', onPaste);
        const q = this._keyQueue ?? [];
        this._keyQueue = null;
        this._keyNow(sc, down, e);
        for (const k of q) k();
      };
      // The clipboard bridge handles the paste event itself (its listener runs first); wait for it to finish.
      const onPaste = () => {
        this._pasteSeen = true;
        void this._h.clipboard.lastPaste.finally(() => setTimeout(release, PASTE_SETTLE_MS));
      };
      this._h.element.addEventListener('paste', onPaste);
      setTimeout(() => { if (!this._pasteSeen) release(); }, PASTE_WAIT_MS);
      return;
    }
    e.preventDefault();
    this._keyNow(sc, down, e);
  }

  private _keyNow(sc: number, down: boolean, e: KeyboardEvent): void {
    if (IS_WINDOWS && this._windowsAltGr(e, down)) return;
    this._key(sc, down, e);
  }

  /** Ctrl+V, Shift+Insert (and Cmd+V): the shortcuts that make a browser fire a paste event. */
  private _isPasteShortcut(e: KeyboardEvent): boolean {
    if (e.altKey) return false;
    return ((e.ctrlKey || e.metaKey) && e.code === 'KeyV') || (e.shiftKey && !e.ctrlKey && e.code === 'Insert');
  }

  /** Windows sends AltGr as ControlLeft then AltRight: hold ControlLeft back briefly, drop it if AltRight follows. */
  private _windowsAltGr(e: KeyboardEvent, down: boolean): boolean {
    const held = this._heldCtrl;
    if (held) {
      clearTimeout(held.timer);
      this._heldCtrl = undefined;
      if (down && e.code === 'AltRight' && e.timeStamp - held.timeStamp < ALTGR_WINDOW_MS) this._droppedCtrl = true;
      else this._key(scancodeOf('ControlLeft')!, true);
    }
    if (e.code === 'ControlLeft') {
      if (down && !e.repeat) {
        this._heldCtrl = {
          timeStamp: e.timeStamp,
          timer: setTimeout(() => {
            this._heldCtrl = undefined;
            this._key(scancodeOf('ControlLeft')!, true);
          }, ALTGR_WINDOW_MS),
        };
        return true;
      }
      if (!down && this._droppedCtrl) {
        this._droppedCtrl = false;
        return true;
      }
    }
    return false;
  }

  private _key(sc: number, down: boolean, e?: KeyboardEvent): void {
    const inputs = this._h.inputs();
    if (!inputs) return;
    if (down) {
      if (e) this._syncModifiers(inputs, e);
      if (e && e.code !== 'CapsLock') this._syncCapsLock(inputs, e.getModifierState('CapsLock'));
      inputs.keyDown(sc);
      this._pressed.add(sc);
      this._h.onKeyDown();
    } else if (this._pressed.delete(sc)) {
      inputs.keyUp(sc);
    }
  }

  /**
   * Makes the guest's Shift, Ctrl and Alt agree with the event's modifier flags: a modifier pressed before the
   * console had focus (or by software that sends shifted characters without a Shift key event) is pressed in the
   * guest too, and one released elsewhere is released. Left out with AltGr down (Windows reports it as Ctrl+Alt).
   */
  private _syncModifiers(inputs: InputsChannel, e: KeyboardEvent): void {
    if (e.getModifierState('AltGraph')) return;
    for (const [flag, left, right] of [
      [e.shiftKey, 'ShiftLeft', 'ShiftRight'],
      [e.ctrlKey, 'ControlLeft', 'ControlRight'],
      [e.altKey, 'AltLeft', 'AltRight'],
    ] as const) {
      if (e.code === left || e.code === right) continue;
      const l = scancodeOf(left)!;
      const r = scancodeOf(right)!;
      const down = this._pressed.has(l) || this._pressed.has(r);
      if (flag && !down) {
        inputs.keyDown(l);
        this._pressed.add(l);
      } else if (!flag && down) {
        for (const sc of [l, r]) if (this._pressed.delete(sc)) inputs.keyUp(sc);
      }
    }
  }

  /** Makes the guest's Caps Lock follow the local one (spice-server presses Caps Lock in the guest if they differ). */
  private _syncCapsLock(inputs: InputsChannel, local: boolean): void {
    const guest = this._guestCaps ?? (inputs.modifiers & KeyModifier.CAPS_LOCK) !== 0;
    if (guest === local) return;
    inputs.setModifiers((inputs.modifiers & ~KeyModifier.CAPS_LOCK) | (local ? KeyModifier.CAPS_LOCK : 0));
    this._guestCaps = local;
  }

  /** Follows the guest's Caps Lock reported by a new inputs channel. */
  attach(inputs: InputsChannel): void {
    this._guestCaps = undefined;
    inputs.onModifiers((m) => (this._guestCaps = (m & KeyModifier.CAPS_LOCK) !== 0));
  }
}
