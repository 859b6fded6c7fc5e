// Text → key strokes for a guest using the US keyboard layout (the default of the Linux console,
// Windows and most installers): which KeyboardEvent.code to press for a character, and whether
// Shift is held. Characters the layout cannot type (e.g. "é") are refused rather than guessed.
import { SpiceInputError } from './proto/errors.ts';

export interface Keystroke {
  code: string;
  shift: boolean;
}

/** The printable US-layout keys: unshifted character, shifted character, KeyboardEvent.code. */
const KEYS: [string, string, string][] = [
  ['`', '~', 'Backquote'],
  ['1', '!', 'Digit1'],
  ['2', '@', 'Digit2'],
  ['3', '#', 'Digit3'],
  ['4', '$', 'Digit4'],
  ['5', '%', 'Digit5'],
  ['6', '^', 'Digit6'],
  ['7', '&', 'Digit7'],
  ['8', '*', 'Digit8'],
  ['9', '(', 'Digit9'],
  ['0', ')', 'Digit0'],
  ['-', '_', 'Minus'],
  ['=', '+', 'Equal'],
  ['[', '{', 'BracketLeft'],
  [']', '}', 'BracketRight'],
  ['\\', '|', 'Backslash'],
  [';', ':', 'Semicolon'],
  ["'", '"', 'Quote'],
  [',', '<', 'Comma'],
  ['.', '>', 'Period'],
  ['/', '?', 'Slash'],
  [' ', ' ', 'Space'],
  ['\n', '\n', 'Enter'],
  ['\t', '\t', 'Tab'],
  ...[...'abcdefghijklmnopqrstuvwxyz'].map((c): [string, string, string] => [
    c,
    c.toUpperCase(),
    `Key${c.toUpperCase()}`,
  ]),
];

const STROKES = new Map<string, Keystroke>();
for (const [plain, shifted, code] of KEYS) {
  if (!STROKES.has(shifted)) STROKES.set(shifted, { code, shift: true });
  STROKES.set(plain, { code, shift: false });
}

/** The key stroke that types `ch` on a US layout, or undefined when that layout has no key for it. */
export function keystrokeFor(ch: string): Keystroke | undefined {
  return STROKES.get(ch);
}

/** The key strokes that type `text` on a US layout; throws SpiceInputError for other characters. */
export function keystrokesForText(text: string): Keystroke[] {
  return [...text.replace(/\r\n?/g, '\n')].map((ch) => {
    const k = STROKES.get(ch);
    if (!k) throw new SpiceInputError(`cannot type ${JSON.stringify(ch)} with a US keyboard layout`);
    return k;
  });
}
