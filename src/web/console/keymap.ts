// Keys by physical position, for the browser console. The tables live in the SPICE core (src/spice/keymap.ts:
// KeyboardEvent.code → PC AT set-1 scancode, from QEMU's keymaps.csv; src/spice/keymap-us.ts: characters of a US
// keyboard), shared with the headless client; this file adds what only the browser needs.
import { scancodeOf as coreScancodeOf } from '../../spice/keymap.ts';
import { keystrokeFor, type Keystroke } from '../../spice/keymap-us.ts';

export type KeyStroke = Keystroke;

/** Older browsers (and Firefox before 118) name the Windows/Super keys OSLeft/OSRight. */
const ALIASES: Readonly<Record<string, string>> = { OSLeft: 'MetaLeft', OSRight: 'MetaRight' };

/** The set-1 scancode (0xE0nn for extended keys) of a KeyboardEvent.code, or undefined for keys without one. */
export function scancodeOf(code: string): number | undefined {
  return coreScancodeOf(ALIASES[code] ?? code);
}

/** Key combinations offered by the console's send-key menu (keys pressed in order, released in reverse). */
export const SEND_KEY_COMBOS: ReadonlyArray<{ label: string; codes: string[] }> = [
  { label: 'Ctrl+Alt+Del', codes: ['ControlLeft', 'AltLeft', 'Delete'] },
  { label: 'Ctrl+Alt+Backspace', codes: ['ControlLeft', 'AltLeft', 'Backspace'] },
  ...Array.from({ length: 12 }, (_, i) => ({
    label: `Ctrl+Alt+F${i + 1}`,
    codes: ['ControlLeft', 'AltLeft', `F${i + 1}`],
  })),
  { label: 'Alt+Tab', codes: ['AltLeft', 'Tab'] },
  { label: 'Alt+F4', codes: ['AltLeft', 'F4'] },
  { label: 'PrintScreen', codes: ['PrintScreen'] },
];

/** Text as US keystrokes; CR LF and lone CR become one Enter. `skipped` counts characters with no key. */
export function textToKeystrokes(text: string): { strokes: KeyStroke[]; skipped: number } {
  const strokes: KeyStroke[] = [];
  let skipped = 0;
  for (const ch of text.replace(/\r\n?/g, '\n')) {
    const k = keystrokeFor(ch);
    if (k) strokes.push(k);
    else skipped++;
  }
  return { strokes, skipped };
}
