// KeyboardEvent.code → PC AT scancode set 1 ("XT" codes), what the SPICE inputs channel carries
// (KEY_DOWN/KEY_UP; docs/spice-protocol.md §3.7). Values ≥ 0xE000 are E0-prefixed keys (packScancode in
// channels/inputs.ts sends them as two bytes).
//
// Provenance: the key names are the W3C UI Events "KeyboardEvent code Values"; the codes are the
// `atset1` column of keycodemapdb's keymaps.csv (gitlab.com/keycodemap/keycodemapdb, the database
// QEMU's own key tables come from), written out by hand and checked entry by entry against noVNC
// core/input/xtscancodes.js, which is generated from that database ("keymap-gen code-map --lang=js
// keymaps.csv html atset1", database sha256 92fd1655…2cab94). QEMU (ui/spice-input.c kbd_push_key)
// turns E0 xx into its key number 0x80 | xx, the same keycodemapdb `qnum` column, so the guest sees
// the Linux key the database lists: PrintScreen = 0x54 → KEY_SYSRQ, Pause = E0 46 → KEY_PAUSE.
// test/spice/keymap.test.ts keeps the invariants (no duplicates, byte ranges, 105-key coverage).

/** The 105-key ISO PC keyboard: main block, function row, navigation, numeric keypad. */
const MAIN: Record<string, number> = {
  Escape: 0x01, Digit1: 0x02, Digit2: 0x03, Digit3: 0x04, Digit4: 0x05, Digit5: 0x06, Digit6: 0x07,
  Digit7: 0x08, Digit8: 0x09, Digit9: 0x0a, Digit0: 0x0b, Minus: 0x0c, Equal: 0x0d, Backspace: 0x0e,
  Tab: 0x0f, KeyQ: 0x10, KeyW: 0x11, KeyE: 0x12, KeyR: 0x13, KeyT: 0x14, KeyY: 0x15, KeyU: 0x16,
  KeyI: 0x17, KeyO: 0x18, KeyP: 0x19, BracketLeft: 0x1a, BracketRight: 0x1b, Enter: 0x1c,
  ControlLeft: 0x1d, KeyA: 0x1e, KeyS: 0x1f, KeyD: 0x20, KeyF: 0x21, KeyG: 0x22, KeyH: 0x23,
  KeyJ: 0x24, KeyK: 0x25, KeyL: 0x26, Semicolon: 0x27, Quote: 0x28, Backquote: 0x29, ShiftLeft: 0x2a,
  Backslash: 0x2b, KeyZ: 0x2c, KeyX: 0x2d, KeyC: 0x2e, KeyV: 0x2f, KeyB: 0x30, KeyN: 0x31,
  KeyM: 0x32, Comma: 0x33, Period: 0x34, Slash: 0x35, ShiftRight: 0x36, NumpadMultiply: 0x37,
  AltLeft: 0x38, Space: 0x39, CapsLock: 0x3a, F1: 0x3b, F2: 0x3c, F3: 0x3d, F4: 0x3e, F5: 0x3f,
  F6: 0x40, F7: 0x41, F8: 0x42, F9: 0x43, F10: 0x44, NumLock: 0x45, ScrollLock: 0x46, Numpad7: 0x47,
  Numpad8: 0x48, Numpad9: 0x49, NumpadSubtract: 0x4a, Numpad4: 0x4b, Numpad5: 0x4c, Numpad6: 0x4d,
  NumpadAdd: 0x4e, Numpad1: 0x4f, Numpad2: 0x50, Numpad3: 0x51, Numpad0: 0x52, NumpadDecimal: 0x53,
  IntlBackslash: 0x56, F11: 0x57, F12: 0x58,
  NumpadEnter: 0xe01c, ControlRight: 0xe01d, NumpadDivide: 0xe035, PrintScreen: 0x54,
  AltRight: 0xe038, Pause: 0xe046, Home: 0xe047, ArrowUp: 0xe048, PageUp: 0xe049,
  ArrowLeft: 0xe04b, ArrowRight: 0xe04d, End: 0xe04f, ArrowDown: 0xe050, PageDown: 0xe051,
  Insert: 0xe052, Delete: 0xe053, MetaLeft: 0xe05b, MetaRight: 0xe05c, ContextMenu: 0xe05d,
};

/**
 * Extras: F13–F24 (keycodemapdb's atset1 values, not the 0x64… run some keyboards use), Japanese and
 * Brazilian keys, keypad extras, editing, system, media and browser keys. Lang1/Lang2 (Korean
 * Hangul/Hanja) have no set-1 code QEMU can take (0xF2/0xF1 collide with release codes) and are left out.
 */
const EXTRA: Record<string, number> = {
  NumpadEqual: 0x59, NumpadComma: 0x7e, NumpadParenLeft: 0xe076, NumpadParenRight: 0xe07b,
  F13: 0x5d, F14: 0x5e, F15: 0x5f, F16: 0x55, F17: 0xe003, F18: 0xe077, F19: 0xe004, F20: 0x5a,
  F21: 0x74, F22: 0xe079, F23: 0x6d, F24: 0x6f,
  KanaMode: 0x70, IntlRo: 0x73, IntlYen: 0x7d, Convert: 0x79, NonConvert: 0x7b, Lang3: 0x78,
  Lang4: 0x77, Lang5: 0x76,
  Again: 0xe005, Props: 0xe006, Undo: 0xe007, Copy: 0xe078, Cut: 0xe03c, Paste: 0x65, Find: 0xe041,
  Open: 0x64, Help: 0xe075,
  Power: 0xe05e, Sleep: 0xe05f, WakeUp: 0xe063, Suspend: 0xe025, Eject: 0xe07d,
  MediaTrackPrevious: 0xe010, MediaTrackNext: 0xe019, AudioVolumeMute: 0xe020, LaunchApp2: 0xe021,
  MediaPlayPause: 0xe022, MediaStop: 0xe024, AudioVolumeDown: 0xe02e, AudioVolumeUp: 0xe030,
  BrowserHome: 0xe032, BrowserSearch: 0xe065, BrowserFavorites: 0xe066, BrowserRefresh: 0xe067,
  BrowserStop: 0xe068, BrowserForward: 0xe069, BrowserBack: 0xe06a, LaunchApp1: 0xe06b,
  LaunchMail: 0xe06c, MediaSelect: 0xe06d,
};

/** KeyboardEvent.code → set-1 scancode. */
export const SCANCODES: Readonly<Record<string, number>> = Object.freeze({ ...MAIN, ...EXTRA });

/** The set-1 scancode of a KeyboardEvent.code, or undefined for codes without one (e.g. "Fn"). */
export function scancodeOf(code: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(SCANCODES, code) ? SCANCODES[code] : undefined;
}
