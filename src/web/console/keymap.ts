// Keys by physical position: KeyboardEvent.code (UI Events KeyboardEvent code values, which name the key of a US
// keyboard at that position) to PC AT scancode set 1, what the SPICE inputs channel carries. Extended keys are
// 0xE0nn (packScancode in src/spice/channels/inputs.ts sends the prefix). The guest's own keyboard layout turns
// positions into characters, so a German or French guest gets its layout, AltGr included, whatever the browser's.
//
// Values from the keymap database QEMU and noVNC generate their tables from (qemu/ui/keycodemapdb keymaps.csv,
// columns "html" and "atset1"; noVNC core/input/xtscancodes.js). Not mappable: Pause (E1 1D 45, a sequence with no
// break code) and keys with no set-1 code; they are ignored.

export const SCANCODES: Readonly<Record<string, number>> = {
  Escape: 0x01,
  Digit1: 0x02, Digit2: 0x03, Digit3: 0x04, Digit4: 0x05, Digit5: 0x06,
  Digit6: 0x07, Digit7: 0x08, Digit8: 0x09, Digit9: 0x0a, Digit0: 0x0b,
  Minus: 0x0c, Equal: 0x0d, Backspace: 0x0e, Tab: 0x0f,
  KeyQ: 0x10, KeyW: 0x11, KeyE: 0x12, KeyR: 0x13, KeyT: 0x14, KeyY: 0x15, KeyU: 0x16, KeyI: 0x17, KeyO: 0x18, KeyP: 0x19,
  BracketLeft: 0x1a, BracketRight: 0x1b, Enter: 0x1c, ControlLeft: 0x1d,
  KeyA: 0x1e, KeyS: 0x1f, KeyD: 0x20, KeyF: 0x21, KeyG: 0x22, KeyH: 0x23, KeyJ: 0x24, KeyK: 0x25, KeyL: 0x26,
  Semicolon: 0x27, Quote: 0x28, Backquote: 0x29, ShiftLeft: 0x2a, Backslash: 0x2b,
  KeyZ: 0x2c, KeyX: 0x2d, KeyC: 0x2e, KeyV: 0x2f, KeyB: 0x30, KeyN: 0x31, KeyM: 0x32,
  Comma: 0x33, Period: 0x34, Slash: 0x35, ShiftRight: 0x36, NumpadMultiply: 0x37, AltLeft: 0x38, Space: 0x39,
  CapsLock: 0x3a,
  F1: 0x3b, F2: 0x3c, F3: 0x3d, F4: 0x3e, F5: 0x3f, F6: 0x40, F7: 0x41, F8: 0x42, F9: 0x43, F10: 0x44,
  NumLock: 0x45, ScrollLock: 0x46,
  Numpad7: 0x47, Numpad8: 0x48, Numpad9: 0x49, NumpadSubtract: 0x4a,
  Numpad4: 0x4b, Numpad5: 0x4c, Numpad6: 0x4d, NumpadAdd: 0x4e,
  Numpad1: 0x4f, Numpad2: 0x50, Numpad3: 0x51, Numpad0: 0x52, NumpadDecimal: 0x53,
  IntlBackslash: 0x56, F11: 0x57, F12: 0x58, NumpadEqual: 0x59,
  F13: 0x64, F14: 0x65, F15: 0x66, F16: 0x67, F17: 0x68, F18: 0x69, F19: 0x6a, F20: 0x6b, F21: 0x6c, F22: 0x6d,
  F23: 0x6e, F24: 0x76,
  KanaMode: 0x70, Lang2: 0x71, Lang1: 0x72, IntlRo: 0x73, Convert: 0x79, NonConvert: 0x7b, IntlYen: 0x7d,
  NumpadComma: 0x7e,
  // E0-prefixed
  MediaTrackPrevious: 0xe010, MediaTrackNext: 0xe019, NumpadEnter: 0xe01c, ControlRight: 0xe01d,
  AudioVolumeMute: 0xe020, LaunchApp2: 0xe021, MediaPlayPause: 0xe022, MediaStop: 0xe024,
  AudioVolumeDown: 0xe02e, AudioVolumeUp: 0xe030, BrowserHome: 0xe032, NumpadDivide: 0xe035,
  PrintScreen: 0xe037, AltRight: 0xe038,
  Home: 0xe047, ArrowUp: 0xe048, PageUp: 0xe049, ArrowLeft: 0xe04b, ArrowRight: 0xe04d, End: 0xe04f,
  ArrowDown: 0xe050, PageDown: 0xe051, Insert: 0xe052, Delete: 0xe053,
  MetaLeft: 0xe05b, MetaRight: 0xe05c, ContextMenu: 0xe05d, Power: 0xe05e, Sleep: 0xe05f, WakeUp: 0xe063,
  BrowserSearch: 0xe065, BrowserFavorites: 0xe066, BrowserRefresh: 0xe067, BrowserStop: 0xe068,
  BrowserForward: 0xe069, BrowserBack: 0xe06a, LaunchApp1: 0xe06b, LaunchMail: 0xe06c, MediaSelect: 0xe06d,
  // Older names some browsers still send for the same keys
  OSLeft: 0xe05b, OSRight: 0xe05c,
};

/** The set-1 scancode of the key at `code`'s position, or undefined. */
export function scancodeOf(code: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(SCANCODES, code) ? SCANCODES[code] : undefined;
}

/** Key combinations offered by the console's send-key menu (keys pressed in order, released in reverse). */
export const SEND_KEY_COMBOS: ReadonlyArray<{ label: string; codes: string[] }> = [
  { label: 'Ctrl+Alt+Del', codes: ['ControlLeft', 'AltLeft', 'Delete'] },
  { label: 'Ctrl+Alt+Backspace', codes: ['ControlLeft', 'AltLeft', 'Backspace'] },
  ...Array.from({ length: 12 }, (_, i) => ({ label: `Ctrl+Alt+F${i + 1}`, codes: ['ControlLeft', 'AltLeft', `F${i + 1}`] })),
  { label: 'Alt+Tab', codes: ['AltLeft', 'Tab'] },
  { label: 'Alt+F4', codes: ['AltLeft', 'F4'] },
  { label: 'PrintScreen', codes: ['PrintScreen'] },
];

// Characters of a US keyboard: the key (code) and whether Shift is held. Used to type text as keystrokes: what the
// guest shows then depends on its layout, as when a person types; on a US guest it is the text itself.
const US_SHIFTED: Record<string, string> = {
  '~': 'Backquote', '!': 'Digit1', '@': 'Digit2', '#': 'Digit3', $: 'Digit4', '%': 'Digit5', '^': 'Digit6',
  '&': 'Digit7', '*': 'Digit8', '(': 'Digit9', ')': 'Digit0', _: 'Minus', '+': 'Equal', '{': 'BracketLeft',
  '}': 'BracketRight', '|': 'Backslash', ':': 'Semicolon', '"': 'Quote', '<': 'Comma', '>': 'Period', '?': 'Slash',
};
const US_PLAIN: Record<string, string> = {
  '`': 'Backquote', '-': 'Minus', '=': 'Equal', '[': 'BracketLeft', ']': 'BracketRight', '\\': 'Backslash',
  ';': 'Semicolon', "'": 'Quote', ',': 'Comma', '.': 'Period', '/': 'Slash', ' ': 'Space', '\n': 'Enter', '\t': 'Tab',
};

export interface KeyStroke {
  code: string;
  shift: boolean;
}

/** The keystroke that types `ch` on a US keyboard, or undefined (characters a US keyboard has no key for). */
export function usKeystroke(ch: string): KeyStroke | undefined {
  if (/^[a-z]$/.test(ch)) return { code: `Key${ch.toUpperCase()}`, shift: false };
  if (/^[A-Z]$/.test(ch)) return { code: `Key${ch}`, shift: true };
  if (/^[0-9]$/.test(ch)) return { code: `Digit${ch}`, shift: false };
  if (US_PLAIN[ch]) return { code: US_PLAIN[ch]!, shift: false };
  if (US_SHIFTED[ch]) return { code: US_SHIFTED[ch]!, shift: true };
  return undefined;
}

/** Text as US keystrokes; CR LF and lone CR become one Enter. `skipped` counts characters with no key. */
export function textToKeystrokes(text: string): { strokes: KeyStroke[]; skipped: number } {
  const strokes: KeyStroke[] = [];
  let skipped = 0;
  for (const ch of text.replace(/\r\n?/g, '\n')) {
    const k = usKeystroke(ch);
    if (k) strokes.push(k);
    else skipped++;
  }
  return { strokes, skipped };
}
