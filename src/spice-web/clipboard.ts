// The shared clipboard of the browser console: the guest's CLIPBOARD selection (through the SPICE agent, by demand)
// and this computer's clipboard (the async Clipboard API), both ways, text and PNG pictures.
//
// - Guest → here: when the guest copies (the agent's GRAB offers UTF8_TEXT and/or PNG), the data is read from the
//   guest at once and written with navigator.clipboard.write(). Writing needs the page focused and the
//   clipboard-write permission; while the page is in the background the write waits for focus. Where the browser
//   refuses (an insecure context: http on a host that is not localhost; a denied permission; a browser without the
//   API) the content is kept for the clipboard panel, which shows it with a Copy button.
// - Here → guest: only when the person says so. Always on a paste shortcut in the console (the paste event's
//   clipboardData: works without any permission) and from the panel. Automatic sharing (off by default, a checkbox
//   in the panel, remembered in this browser) also sends it when the console gets focus (the person comes back
//   from another window or tab) and when the browser reports a clipboard change (`clipboardchange`): without that
//   choice a guest never sees what was copied elsewhere (a password in another tab) before a paste into it.
//   Reading on focus needs clipboard-read: asked once (Chromium shows its prompt), never again when refused; the
//   panel's "Allow" button asks again.
// - Nothing is sent back and forth for nothing: a signature of the content both sides last agreed on is kept.
// - Sizes are capped (MAX_CLIPBOARD_BYTES) with a message saying so, both ways.
import {
  ClipboardError,
  ClipboardType,
  Selection,
  type AgentClipboard,
  type Disposable,
  type SpiceAgent,
} from '../spice/index.ts';

/** Where this browser remembers the person's choice of automatic sharing (here → guest without a paste). */
export const AUTO_SHARE_KEY = 'oriel.clipboard.autoShare';

/** Largest clipboard item shared either way (text bytes in UTF-8, or PNG bytes). */
export const MAX_CLIPBOARD_BYTES = 32 * 1024 * 1024;

/** What the browser lets the page do with its clipboard, per direction. */
export type ClipboardAccess = 'unknown' | 'granted' | 'prompt' | 'denied' | 'unavailable';

export interface ClipboardContentView {
  text?: string;
  /** PNG bytes. */
  png?: Uint8Array;
  /** An object URL of the PNG, for a preview (revoked when replaced). */
  imageUrl?: string;
  at: number;
}

export interface ClipboardMessage {
  text: string;
  kind: 'info' | 'error';
}

export interface ClipboardBridgeOptions {
  /** The console's focusable element: focus and paste events on it. */
  element: HTMLElement;
  onChange: () => void;
  /** Largest item, bytes. Default MAX_CLIPBOARD_BYTES. */
  maxBytes?: number;
  /** Automatic sharing at the start (default: what this browser remembers, else off). */
  autoShare?: boolean;
}

function rememberedAutoShare(): boolean {
  try {
    return globalThis.localStorage?.getItem(AUTO_SHARE_KEY) === 'on';
  } catch {
    return false; // storage refused (private mode, sandboxed frame): the safe default
  }
}

const FOCUS_ERROR = /focus/i;

export function formatSize(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** A short digest of some bytes: SHA-256 where the page has it, FNV-1a otherwise (insecure contexts). */
async function digest(b: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (subtle) {
    const d = new Uint8Array(await subtle.digest('SHA-256', b as Uint8Array<ArrayBuffer>));
    return Array.from(d.subarray(0, 12), (x) => x.toString(16).padStart(2, '0')).join('');
  }
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return `${b.length}:${(h >>> 0).toString(16)}`;
}

/** A short signature of clipboard content, to tell "the same" from "changed" without keeping copies around. */
async function signature(c: { text?: string; png?: Uint8Array }): Promise<string> {
  const text =
    c.text === undefined
      ? '-'
      : c.text.length <= 256
        ? `t:${c.text}`
        : `T:${await digest(new TextEncoder().encode(c.text))}`;
  return `${text}|${c.png ? await digest(c.png) : ''}`;
}

export class ClipboardBridge {
  /** Reading this computer's clipboard (here → guest without the panel). */
  readAccess: ClipboardAccess = 'unknown';
  /** Writing this computer's clipboard (guest → here without the panel). */
  writeAccess: ClipboardAccess = 'unknown';
  /** What the guest copied last (kept for the panel). */
  guest: ClipboardContentView | undefined;
  /** What was last given to the guest. */
  sent: ClipboardContentView | undefined;
  /** The guest's latest content could not be put on this computer's clipboard: it waits in the panel. */
  needsPanel = false;
  /** The guest's latest content waits for the page to get focus to be written locally. */
  pendingWrite = false;
  message: ClipboardMessage | undefined;
  /** The latest paste event's handling (the console holds the paste keys back until it is done). */
  lastPaste: Promise<void> = Promise.resolve();
  /** Counters for the status line and tests. */
  readonly stats = { toLocal: 0, toGuest: 0, fromGuest: 0 };

  private _agent: SpiceAgent | undefined;
  private _subs: Disposable[] = [];
  /** Signature of what both sides last agreed on. */
  private _agreed: string | undefined;
  private _grabGen = 0;
  private _askedRead = false;
  private _oversizedGrab = -1;
  private _chain: Promise<unknown> = Promise.resolve();
  private _syncQueued = false;
  private readonly _maxBytes: number;
  private readonly _cleanups: (() => void)[] = [];
  private _autoShare: boolean;

  constructor(private readonly _opts: ClipboardBridgeOptions) {
    this._maxBytes = _opts.maxBytes ?? MAX_CLIPBOARD_BYTES;
    this._autoShare = _opts.autoShare ?? rememberedAutoShare();
    const clip = navigator.clipboard as Clipboard | undefined;
    if (!window.isSecureContext || !clip) {
      this.readAccess = 'unavailable';
      this.writeAccess = 'unavailable';
    } else {
      if (typeof clip.read !== 'function') this.readAccess = 'unavailable';
      if (typeof clip.write !== 'function') this.writeAccess = 'unavailable';
      void this._watchPermission('clipboard-read', (a) => (this.readAccess = a));
      void this._watchPermission('clipboard-write', (a) => (this.writeAccess = a));
      // Chromium 140+: the clipboard changed while the page has focus (and may read it).
      const onClipChange = () => { if (this._consoleFocused()) this.syncFromLocal('clipboardchange'); };
      clip.addEventListener?.('clipboardchange', onClipChange);
      this._cleanups.push(() => clip.removeEventListener?.('clipboardchange', onClipChange));
    }
    const el = _opts.element;
    const onFocus = () => this.syncFromLocal('focus');
    const onWindowFocus = () => {
      if (this.pendingWrite) void this._enqueue(() => this._writeLocal());
      if (this._consoleFocused()) this.syncFromLocal('focus');
    };
    const onPaste = (e: Event) => {
      this.lastPaste = this.handlePaste(e as ClipboardEvent).catch(() => undefined);
    };
    el.addEventListener('focus', onFocus);
    el.addEventListener('paste', onPaste);
    window.addEventListener('focus', onWindowFocus);
    this._cleanups.push(
      () => el.removeEventListener('focus', onFocus),
      () => el.removeEventListener('paste', onPaste),
      () => window.removeEventListener('focus', onWindowFocus),
    );
  }

  /** The agent of a new session (or undefined when the session ended). */
  attach(agent: SpiceAgent | undefined): void {
    for (const s of this._subs.splice(0)) s.dispose();
    this._agent = agent;
    // A new session: the guest forgot what this client offered, the client what the guest had.
    this._agreed = undefined;
    if (!agent) return;
    const cb = agent.clipboard;
    this._subs.push(
      cb.onGuestGrab((g) => { if (g.selection === Selection.CLIPBOARD) this._onGuestGrab(cb, g.types); }),
      agent.onState((s) => {
        if (s === 'ready' && this._consoleFocused()) this.syncFromLocal('agent');
        this._changed();
      }),
      agent.onWarning((w) => this._onAgentWarning(w)),
    );
    if (agent.state === 'ready' && this._consoleFocused()) this.syncFromLocal('agent');
  }

  /** The guest's clipboard can be used (the agent is there and offers clipboard by demand). */
  get available(): boolean {
    return this._agent?.state === 'ready';
  }

  /** This computer's clipboard goes to the guest by itself (on focus, on a change), not only on a paste. */
  get autoShare(): boolean {
    return this._autoShare;
  }

  /** The person's choice (the panel's checkbox): remembered in this browser; turning it on shares at once. */
  setAutoShare(on: boolean): void {
    this._autoShare = on;
    try {
      globalThis.localStorage?.setItem(AUTO_SHARE_KEY, on ? 'on' : 'off');
    } catch {
      // not remembered; it still holds for this page
    }
    if (on) this.syncFromLocal('button');
    this._changed();
  }

  /** Both directions work without the panel. */
  get seamless(): boolean {
    return (this.readAccess === 'granted') && (this.writeAccess === 'granted' || this.writeAccess === 'unknown');
  }

  /**
   * The paste shortcut is about to reach the guest: the console lets the browser fire its paste event first and
   * calls this with it; resolves once the guest holds the pasted content (or at once if nothing changed).
   */
  async handlePaste(e: ClipboardEvent): Promise<void> {
    const dt = e.clipboardData;
    if (!dt) return;
    e.preventDefault();
    const text = dt.types.includes('text/plain') ? dt.getData('text/plain') : undefined;
    let pngFile: File | undefined;
    for (const it of dt.items) if (it.kind === 'file' && it.type === 'image/png') pngFile = it.getAsFile() ?? undefined;
    const read = async () => {
      const png = pngFile ? new Uint8Array(await pngFile.arrayBuffer()) : undefined;
      if (text === undefined && !png) return;
      await this._offerLocal({ text, png }, 'paste');
    };
    await this._enqueue(read);
  }

  /** Reads this computer's clipboard and gives it to the guest if it changed. Coalesces bursts of calls. */
  syncFromLocal(reason: 'focus' | 'agent' | 'clipboardchange' | 'button' | 'allow'): void {
    if (this._syncQueued) return;
    this._syncQueued = true;
    void this._enqueue(async () => {
      this._syncQueued = false;
      await this._readLocal(reason);
    });
  }

  /** The panel's "Allow clipboard access": a read from a click, which lets the browser ask the person. */
  requestAccess(): Promise<void> {
    this._askedRead = false;
    return this._enqueue(() => this._readLocal('allow'));
  }

  /** The panel's "Send to guest". */
  sendToGuest(content: { text?: string; png?: Uint8Array }): Promise<void> {
    return this._enqueue(() => this._offerLocal(content, 'panel'));
  }

  /**
   * The panel's "Copy": puts the guest's content on this computer's clipboard from a click (which the browser
   * allows more often than a write out of the blue). Falls back to the old execCommand('copy') for text on pages
   * without the Clipboard API; returns false when nothing worked (the person copies from the text box then).
   */
  async copyGuestToLocal(fallbackField?: HTMLTextAreaElement): Promise<boolean> {
    const g = this.guest;
    if (!g) return false;
    if (this.writeAccess !== 'unavailable' && navigator.clipboard?.write) {
      try {
        await navigator.clipboard.write([new ClipboardItem(this._items(g))]);
        this._setMessage(undefined);
        this.needsPanel = false;
        this.stats.toLocal++;
        this._agreed = await signature(g);
        this._changed();
        return true;
      } catch (e) {
        this._setMessage({ kind: 'error', text: `The browser refused to copy: ${(e as Error).message}` });
      }
    }
    if (g.text !== undefined && fallbackField) {
      fallbackField.focus();
      fallbackField.select();
      // Deprecated but still the only way without the Clipboard API (http pages); text only.
      const ok = document.execCommand('copy');
      if (ok) {
        this.needsPanel = false;
        this.stats.toLocal++;
        this._setMessage({ kind: 'info', text: 'Copied.' });
        return true;
      }
    }
    return false;
  }

  dispose(): void {
    for (const s of this._subs.splice(0)) s.dispose();
    for (const c of this._cleanups.splice(0)) c();
    for (const v of [this.guest, this.sent]) if (v?.imageUrl) URL.revokeObjectURL(v.imageUrl);
  }

  // --- guest → here --------------------------------------------------------------------------------------------

  private _onGuestGrab(cb: AgentClipboard, types: number[]): void {
    const gen = ++this._grabGen;
    const hasText = types.includes(ClipboardType.UTF8_TEXT);
    const hasPng = types.includes(ClipboardType.PNG);
    if (!hasText && !hasPng) return; // files, or pictures in formats without PNG: nothing a browser clipboard takes
    void this._enqueue(async () => {
      if (gen !== this._grabGen) return; // a newer copy in the guest
      let text: string | undefined;
      let png: Uint8Array | undefined;
      try {
        if (hasPng) png = await cb.readPng();
        if (hasText) text = await cb.readText();
      } catch (e) {
        if (gen !== this._grabGen) return;
        if (this._oversizedGrab === gen) return; // already said why
        this._setMessage({ kind: 'error', text: `Could not read the guest's clipboard: ${(e as Error).message}` });
        return;
      }
      if (gen !== this._grabGen || (text === undefined && !png)) return;
      this.stats.fromGuest++;
      this._setGuest({ text, png, at: Date.now() });
      await this._writeLocal();
    });
  }

  private async _writeLocal(): Promise<void> {
    const g = this.guest;
    this.pendingWrite = false;
    if (!g) return;
    if (this.writeAccess === 'unavailable' || this.writeAccess === 'denied' || !navigator.clipboard?.write) {
      this.needsPanel = true;
      this._changed();
      return;
    }
    if (!document.hasFocus()) {
      // Browsers write the clipboard only for a focused page: do it when the person comes back.
      this.pendingWrite = true;
      this._changed();
      return;
    }
    try {
      await navigator.clipboard.write([new ClipboardItem(this._items(g))]);
      this.stats.toLocal++;
      this.needsPanel = false;
      if (this.writeAccess === 'unknown' || this.writeAccess === 'prompt') this.writeAccess = 'granted';
      this._agreed = await signature(g);
      // The browser re-encodes pictures it writes; what it reads back is what "the same" means from now on.
      if (g.png && this.readAccess === 'granted') {
        const back = await this._readClipboard().catch(() => undefined);
        if (back) this._agreed = await signature(back);
      }
      if (this.message?.kind === 'error') this._setMessage(undefined);
    } catch (e) {
      const err = e as DOMException;
      if (err.name === 'NotAllowedError' && FOCUS_ERROR.test(err.message)) {
        this.pendingWrite = true;
      } else if (err.name === 'NotAllowedError') {
        this.writeAccess = 'denied';
        this.needsPanel = true;
        this._setMessage({
          kind: 'error',
          text: "The browser does not let this page write the clipboard: the guest's clipboard is in the panel.",
        });
      } else {
        this.needsPanel = true;
        this._setMessage({
          kind: 'error',
          text: `Could not put the guest's clipboard on this computer's: ${err.message}`,
        });
      }
    }
    this._changed();
  }

  private _items(c: { text?: string; png?: Uint8Array }): Record<string, Blob> {
    const items: Record<string, Blob> = {};
    if (c.text !== undefined) items['text/plain'] = new Blob([c.text], { type: 'text/plain' });
    if (c.png) items['image/png'] = new Blob([c.png as Uint8Array<ArrayBuffer>], { type: 'image/png' });
    return items;
  }

  private _onAgentWarning(w: string): void {
    const m = /of (\d+) bytes, over the (\d+)-byte limit/.exec(w);
    if (m) {
      this._oversizedGrab = this._grabGen;
      this._setMessage({
        kind: 'error',
        text: `The guest's clipboard (${formatSize(Number(m[1]))}) is over the ${formatSize(Number(m[2]))} limit: not copied.`,
      });
    }
  }

  // --- here → guest --------------------------------------------------------------------------------------------

  private async _readLocal(reason: string): Promise<void> {
    if (!this.available) return;
    // Only an explicit act shares this computer's clipboard ("allow" asks the browser; it shares only when chosen).
    if (!this._autoShare && reason !== 'button' && reason !== 'allow') return;
    if (this.readAccess === 'unavailable' || this.readAccess === 'denied') return;
    // Without the Permissions API saying anything (Firefox, Safari), a read pops up the browser's own paste
    // button every time: only on a click in the panel there; the paste shortcut works without it.
    const clicked = reason === 'button' || reason === 'allow';
    if (this.readAccess === 'unknown' && !clicked) return;
    if (this.readAccess === 'prompt') {
      if (this._askedRead && !clicked) return;
      this._askedRead = true;
    }
    if (!document.hasFocus()) return;
    let got: { text?: string; png?: Uint8Array } | undefined;
    try {
      got = await this._readClipboard();
      if (this.readAccess !== 'granted') this.readAccess = 'granted';
    } catch (e) {
      const err = e as DOMException;
      if (err.name === 'NotAllowedError' && !FOCUS_ERROR.test(err.message)) {
        this.readAccess = 'denied';
        this._setMessage({
          kind: 'info',
          text: "Reading this computer's clipboard was refused: paste with the keyboard shortcut in the console, or use the panel.",
        });
      }
      this._changed();
      return;
    }
    if (got && (reason !== 'allow' || this._autoShare)) await this._offerLocal(got, reason);
  }

  private async _readClipboard(): Promise<{ text?: string; png?: Uint8Array } | undefined> {
    const items = await navigator.clipboard.read();
    let text: string | undefined;
    let png: Uint8Array | undefined;
    for (const it of items) {
      if (png === undefined && it.types.includes('image/png'))
        png = new Uint8Array(await (await it.getType('image/png')).arrayBuffer());
      if (text === undefined && it.types.includes('text/plain')) text = await (await it.getType('text/plain')).text();
    }
    if (text === undefined && png === undefined) return undefined;
    return { text, png };
  }

  /** Gives the guest this content if it differs from what both sides last agreed on. */
  private async _offerLocal(c: { text?: string; png?: Uint8Array }, reason: string): Promise<void> {
    const agent = this._agent;
    if (!agent || agent.state !== 'ready') {
      if (reason === 'panel')
        this._setMessage({
          kind: 'error',
          text: 'The guest has no agent connected (spice-vdagent): its clipboard cannot be set.',
        });
      return;
    }
    const textBytes = c.text === undefined ? 0 : new TextEncoder().encode(c.text).length;
    if (textBytes > this._maxBytes || (c.png?.length ?? 0) > this._maxBytes) {
      const what =
        textBytes > this._maxBytes ? `text (${formatSize(textBytes)})` : `picture (${formatSize(c.png!.length)})`;
      this._setMessage({
        kind: 'error',
        text: `The clipboard's ${what} is over the ${formatSize(this._maxBytes)} limit: not sent to the guest.`,
      });
      this._agreed = await signature(c); // say it once, not on every focus
      return;
    }
    const sig = await signature(c);
    if (sig === this._agreed && reason !== 'panel') return;
    try {
      await agent.clipboard.set(c.png ? { text: c.text, png: c.png } : { text: c.text ?? '' });
    } catch (e) {
      this._setMessage({
        kind: 'error',
        text: e instanceof ClipboardError ? e.message : `Could not set the guest's clipboard: ${(e as Error).message}`,
      });
      return;
    }
    this._agreed = sig;
    this.stats.toGuest++;
    if (this.sent?.imageUrl) URL.revokeObjectURL(this.sent.imageUrl);
    this.sent = {
      ...c,
      imageUrl: c.png
        ? URL.createObjectURL(new Blob([c.png as Uint8Array<ArrayBuffer>], { type: 'image/png' }))
        : undefined,
      at: Date.now(),
    };
    if (this.message?.kind === 'error') this._setMessage(undefined);
    this._changed();
  }

  // --- plumbing ------------------------------------------------------------------------------------------------

  private _setGuest(c: ClipboardContentView): void {
    if (this.guest?.imageUrl) URL.revokeObjectURL(this.guest.imageUrl);
    this.guest = {
      ...c,
      imageUrl: c.png
        ? URL.createObjectURL(new Blob([c.png as Uint8Array<ArrayBuffer>], { type: 'image/png' }))
        : undefined,
    };
    this._changed();
  }

  private _setMessage(m: ClipboardMessage | undefined): void {
    this.message = m;
    this._changed();
  }

  private _consoleFocused(): boolean {
    return document.activeElement === this._opts.element && document.hasFocus();
  }

  private _enqueue(fn: () => Promise<void>): Promise<void> {
    const run = this._chain.then(fn, fn);
    this._chain = run.catch(() => undefined);
    return run;
  }

  private async _watchPermission(name: string, set: (a: ClipboardAccess) => void): Promise<void> {
    try {
      const status = await navigator.permissions.query({ name: name as PermissionName });
      const apply = () => {
        set(status.state === 'granted' ? 'granted' : status.state === 'denied' ? 'denied' : 'prompt');
        this._changed();
      };
      apply();
      status.addEventListener('change', () => {
        apply();
        if (name === 'clipboard-write' && status.state === 'granted' && this.needsPanel)
          void this._enqueue(() => this._writeLocal());
      });
    } catch {
      // Firefox and Safari do not know these permission names: stay 'unknown' (try, and fall back on refusal).
    }
  }

  private _changed(): void {
    this._opts.onChange();
  }
}
