// The KeyboardEvent.code → set-1 table (src/spice/keymap.ts) and US-layout typing (keymap-us.ts):
// table invariants, full 105-key ISO coverage, what InputsChannel sends for text and combos.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputsChannel } from '../../src/spice/channels/inputs.ts';
import { keystrokesForText } from '../../src/spice/keymap-us.ts';
import { SCANCODES, scancodeOf } from '../../src/spice/keymap.ts';
import { SpiceInputError } from '../../src/spice/proto/errors.ts';
import { FakeWire } from './helpers/fake.ts';

/** The 105 keys of an ISO PC keyboard (W3C UI Events code values). */
const ISO_105 = [
  'Escape', ...Array.from({ length: 12 }, (_, i) => `F${i + 1}`), 'PrintScreen', 'ScrollLock', 'Pause',
  'Backquote', ...Array.from({ length: 10 }, (_, i) => `Digit${i}`), 'Minus', 'Equal', 'Backspace',
  'Tab', ...[...'QWERTYUIOP'].map((c) => `Key${c}`), 'BracketLeft', 'BracketRight', 'Enter',
  'CapsLock', ...[...'ASDFGHJKL'].map((c) => `Key${c}`), 'Semicolon', 'Quote', 'Backslash',
  'ShiftLeft', 'IntlBackslash', ...[...'ZXCVBNM'].map((c) => `Key${c}`), 'Comma', 'Period', 'Slash', 'ShiftRight',
  'ControlLeft', 'MetaLeft', 'AltLeft', 'Space', 'AltRight', 'MetaRight', 'ContextMenu', 'ControlRight',
  'Insert', 'Home', 'PageUp', 'Delete', 'End', 'PageDown', 'ArrowUp', 'ArrowLeft', 'ArrowDown', 'ArrowRight',
  'NumLock', 'NumpadDivide', 'NumpadMultiply', 'NumpadSubtract', 'Numpad7', 'Numpad8', 'Numpad9', 'NumpadAdd',
  'Numpad4', 'Numpad5', 'Numpad6', 'Numpad1', 'Numpad2', 'Numpad3', 'NumpadEnter', 'Numpad0', 'NumpadDecimal',
];

test('keymap: 105-key ISO coverage, unique codes, valid set-1 bytes', () => {
  assert.equal(new Set(ISO_105).size, 105);
  for (const k of ISO_105) assert.ok(scancodeOf(k) !== undefined, k);
  const values = Object.values(SCANCODES);
  assert.equal(new Set(values).size, values.length, 'no two keys share a scancode');
  for (const [k, v] of Object.entries(SCANCODES)) {
    assert.ok((v >> 8 === 0 || v >> 8 === 0xe0) && (v & 0xff) > 0 && (v & 0xff) < 0x80, `${k}: 0x${v.toString(16)}`);
  }
  assert.equal(scancodeOf('Fn'), undefined);
  assert.equal(scancodeOf('toString'), undefined, 'not fooled by Object.prototype');
  assert.deepEqual(
    [SCANCODES.KeyA, SCANCODES.Enter, SCANCODES.ArrowUp, SCANCODES.IntlBackslash],
    [0x1e, 0x1c, 0xe048, 0x56],
  );
});

test('US layout: every printable ASCII character has a stroke; others are refused', () => {
  for (let c = 0x20; c < 0x7f; c++)
    assert.equal(keystrokesForText(String.fromCharCode(c)).length, 1, String.fromCharCode(c));
  assert.deepEqual(keystrokesForText('aA!\n'), [
    { code: 'KeyA', shift: false },
    { code: 'KeyA', shift: true },
    { code: 'Digit1', shift: true },
    { code: 'Enter', shift: false },
  ]);
  assert.throws(() => keystrokesForText('é'), SpiceInputError);
});

test('InputsChannel: typeText holds Shift around shifted keys; pressKeys releases in reverse', async () => {
  const wire = new FakeWire();
  const inputs = new InputsChannel(3, 0, wire.transport, wire.queue, {
    maxMessageSize: 1 << 16,
    lookup: () => undefined,
  });
  let pauses = 0;
  await inputs.typeText('a!', async () => void pauses++);
  inputs.pressKeys(['ControlLeft', 'AltLeft', 'Delete']);
  const sent = wire.messages().map(([t, b]) => `${t === 101 ? 'down' : 'up'} ${(b[0]! | (b[1]! << 8)).toString(16)}`);
  assert.deepEqual(sent, [
    'down 1e', 'up 9e', // a
    'down 2a', 'down 2', 'up 82', 'up aa', // Shift+1
    'down 1d', 'down 38', 'down 53e0', 'up d3e0', 'up b8', 'up 9d', // Ctrl+Alt+Delete (E0 53)
  ]);
  assert.equal(pauses, 2);
  assert.throws(() => inputs.pressKeys(['ControlLeft', 'Bogus']), /unknown key code "Bogus"/);
  await assert.rejects(inputs.typeText('ok ✓'), SpiceInputError);
  assert.equal(wire.messages().length, 12, 'nothing sent for refused input');
});
