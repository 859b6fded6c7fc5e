// Typing text and pressing key combinations in a guest, the same for every host (the browser's "Type" box and
// send-key menu, `oriel console type` and `oriel console key`): US-layout key strokes (keymap-us.ts), one pace, one
// rule for characters the layout has no key for (refused before anything is sent), one list of key names.
import type { InputsChannel } from '../channels/inputs.ts';
import { keystrokesForText } from '../keymap-us.ts';
import { scancodeOf } from '../keymap.ts';
import { SpiceInputError } from '../proto/errors.ts';
import { pause } from '../timers.ts';

/**
 * Pause after every typed character. QEMU's emulated PS/2 keyboard queues 16 bytes and drops what overflows
 * (hw/input/ps2.c PS2_QUEUE_SIZE), and SPICE has no key acknowledgement: nothing tells the client how far the guest
 * has read, and a busy guest (TCG on a loaded host) can stall for 100 ms and more. At 40 ms a shifted character
 * (4 bytes) leaves room for a 150 ms stall; still ~25 characters a second.
 */
export const TYPE_PAUSE_MS = 40;

export interface TypeOptions {
  /** Pause after every character (default TYPE_PAUSE_MS). */
  pauseMs?: number;
  /** Called after every character sent. */
  onStroke?: () => void;
}

/**
 * Types `text` as a US-layout keyboard would, paced for the guest; resolves with the characters typed. A character
 * that layout cannot type is refused (SpiceInputError, nothing sent); typing stops with an error when the inputs
 * channel closes on the way.
 */
export async function typeText(inputs: InputsChannel, text: string, o: TypeOptions = {}): Promise<number> {
  const total = checkTypeable(text);
  let typed = 0;
  await inputs.typeText(text, async () => {
    // A stroke sent on a closed channel went nowhere: stop, and say how far it got.
    if (inputs.closed) throw new SpiceInputError(`the console closed after ${typed} of ${total} characters`);
    typed++;
    o.onStroke?.();
    if (typed < total) await pause(o.pauseMs ?? TYPE_PAUSE_MS);
  });
  return typed;
}

/** The number of key strokes `text` takes; throws SpiceInputError if a character has no US-layout key. */
export function checkTypeable(text: string): number {
  return keystrokesForText(text).length;
}

/** Short names for keys, besides KeyboardEvent.code values: ctrl, alt, del, pgup … */
const KEY_NAMES: Readonly<Record<string, string>> = {
  ctrl: 'ControlLeft', control: 'ControlLeft', alt: 'AltLeft', altgr: 'AltRight', shift: 'ShiftLeft',
  meta: 'MetaLeft', super: 'MetaLeft', win: 'MetaLeft', cmd: 'MetaLeft', del: 'Delete', delete: 'Delete',
  ins: 'Insert', insert: 'Insert', esc: 'Escape', escape: 'Escape', enter: 'Enter', return: 'Enter', tab: 'Tab',
  space: 'Space', backspace: 'Backspace', up: 'ArrowUp', down: 'ArrowDown', left: 'ArrowLeft', right: 'ArrowRight',
  home: 'Home', end: 'End', pgup: 'PageUp', pageup: 'PageUp', pgdn: 'PageDown', pagedown: 'PageDown',
  print: 'PrintScreen', printscreen: 'PrintScreen', sysrq: 'PrintScreen', pause: 'Pause', menu: 'ContextMenu',
  capslock: 'CapsLock', numlock: 'NumLock', scrolllock: 'ScrollLock', minus: 'Minus', equal: 'Equal',
};

/**
 * "ctrl+alt+delete", "alt+f2", "shift+a", "ControlRight+NumpadEnter" → KeyboardEvent.code values, pressed in order
 * and released in reverse (InputsChannel.pressKeys). Throws SpiceInputError naming an unknown key.
 */
export function parseKeyCombo(combo: string): string[] {
  return combo.split('+').map((raw) => {
    const name = raw.trim();
    const lower = name.toLowerCase();
    const code =
      KEY_NAMES[lower] ??
      (/^f([1-9]|1[0-9]|2[0-4])$/.test(lower) ? lower.toUpperCase() : undefined) ??
      (/^[a-z]$/.test(lower) ? `Key${lower.toUpperCase()}` : undefined) ??
      (/^[0-9]$/.test(lower) ? `Digit${lower}` : undefined) ??
      name;
    if (scancodeOf(code) === undefined)
      throw new SpiceInputError(
        `unknown key '${name}' in '${combo}' (names like ctrl, alt, shift, del, f1, a, 5, or KeyboardEvent.code values)`,
      );
    return code;
  });
}

/** Key combinations a console offers in its send-key menu (keys pressed in order, released in reverse). */
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
