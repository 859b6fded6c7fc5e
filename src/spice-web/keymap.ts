// Keys by physical position, for the browser console. The tables live in the SPICE core (src/spice/keymap.ts:
// KeyboardEvent.code → PC AT set-1 scancode, from QEMU's keymaps.csv; src/spice/keymap-us.ts: characters of a US
// keyboard), shared with the headless client, as are typing text and the send-key combinations
// (src/spice/console/typing.ts); this file adds what only the browser needs.
import { scancodeOf as coreScancodeOf } from '../spice/keymap.ts';

/** Older browsers (and Firefox before 118) name the Windows/Super keys OSLeft/OSRight. */
const ALIASES: Readonly<Record<string, string>> = { OSLeft: 'MetaLeft', OSRight: 'MetaRight' };

/** The set-1 scancode (0xE0nn for extended keys) of a KeyboardEvent.code, or undefined for keys without one. */
export function scancodeOf(code: string): number | undefined {
  return coreScancodeOf(ALIASES[code] ?? code);
}
