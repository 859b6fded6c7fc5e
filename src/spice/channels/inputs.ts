// Inputs channel (type 3): keyboard scancodes and mouse. spice.proto `channel InputsChannel`;
// docs/spice-protocol.md §3.7. Keys are PC/XT scancode set 1; E0-prefixed keys are passed as 0xE0nn.
import { SpiceChannel } from '../channel.ts';
import { Emitter, type Event } from '../emitter.ts';
import { keystrokesForText } from '../keymap-us.ts';
import { SCANCODES, scancodeOf } from '../keymap.ts';
import { InputsCap, InputsMsg, InputsMsgc } from '../proto/constants.ts';
import { SpiceInputError } from '../proto/errors.ts';
import { Writer } from '../proto/writer.ts';

export const INPUTS_CLIENT_CAPS = [InputsCap.KEY_SCANCODE];

/** spice-gtk drops motion once this many motion messages are unacknowledged (2 × SPICE_INPUT_MOTION_ACK_BUNCH). */
const MOTION_ACK_BUNCH = 4;
const MAX_UNACKED_MOTION = 2 * MOTION_ACK_BUNCH;

/**
 * The KEY_DOWN/KEY_UP `code`: up to 4 scancode bytes packed little-endian, release = | 0x80 on the
 * last byte (spice-gtk spice-util.c spice_make_scancode: 0xE0 prefix first, then the code).
 */
export function packScancode(scancode: number, release: boolean): number {
  const code = (scancode & 0x7f) | (release ? 0x80 : 0);
  return (scancode & 0xff00) === 0xe000 ? 0xe0 | (code << 8) : code;
}

export class InputsChannel extends SpiceChannel {
  private readonly _onModifiers = new Emitter<number>();
  /** Guest keyboard LEDs (KeyModifier flags), from INIT and KEY_MODIFIERS. */
  readonly onModifiers: Event<number> = this._onModifiers.event;
  modifiers = 0;
  /** Motion/position messages sent but not yet acknowledged by MOUSE_MOTION_ACK. */
  private _unackedMotion = 0;
  /** Motion messages dropped because the server had not acknowledged enough. */
  droppedMotion = 0;

  keyDown(scancode: number): void {
    this.send(InputsMsgc.KEY_DOWN, new Writer(4).u32(packScancode(scancode, false)).finish());
  }

  keyUp(scancode: number): void {
    this.send(InputsMsgc.KEY_UP, new Writer(4).u32(packScancode(scancode, true)).finish());
  }

  /** Press and release. */
  keyPress(scancode: number): void {
    this.keyDown(scancode);
    this.keyUp(scancode);
  }

  /**
   * Presses the keys named by KeyboardEvent.code in order, then releases them in reverse (a combo:
   * `['ControlLeft', 'AltLeft', 'Delete']`). Throws SpiceInputError for an unknown code before sending anything.
   */
  pressKeys(codes: readonly string[]): void {
    const scancodes = codes.map((c) => {
      const sc = scancodeOf(c);
      if (sc === undefined) throw new SpiceInputError(`unknown key code ${JSON.stringify(c)}`);
      return sc;
    });
    for (const sc of scancodes) this.keyDown(sc);
    for (const sc of scancodes.reverse()) this.keyUp(sc);
  }

  /**
   * Types `text` as a US-layout keyboard would (Shift held where needed; keymap-us.ts), awaiting
   * `pause` after every key stroke. Pace long text: QEMU's emulated PS/2 keyboard drops scancodes
   * beyond its 16-byte queue (hw/input/ps2.c PS2_QUEUE_SIZE) and SPICE has no key acknowledgement;
   * 10 ms per stroke is enough for a TCG guest. Throws SpiceInputError before sending anything if a
   * character cannot be typed.
   */
  async typeText(text: string, pause: () => Promise<void> = async () => {}): Promise<void> {
    const strokes = keystrokesForText(text);
    const shift = SCANCODES.ShiftLeft!;
    for (const k of strokes) {
      if (k.shift) this.keyDown(shift);
      this.keyPress(SCANCODES[k.code]!);
      if (k.shift) this.keyUp(shift);
      await pause();
    }
  }

  /**
   * Makes the guest's lock keys match `flags` (KeyModifier: the client keyboard's Caps/Num/Scroll
   * Lock state, sent when a viewer gains focus). The server presses the lock keys whose guest LED
   * differs (inputs-channel.cpp, KEY_MODIFIERS); the guest's new LED state comes back as onModifiers.
   */
  setModifiers(flags: number): void {
    this.send(InputsMsgc.KEY_MODIFIERS, new Writer(2).u16(flags).finish());
  }

  /** Relative motion (server mouse mode). Returns false when dropped for lack of acks. */
  mouseMotion(dx: number, dy: number, buttons: number): boolean {
    if (!this._motionSlot()) return false;
    this.send(InputsMsgc.MOUSE_MOTION, new Writer(10).i32(dx).i32(dy).u16(buttons).finish());
    return true;
  }

  /** Absolute position (client mouse mode). Returns false when dropped for lack of acks. */
  mousePosition(x: number, y: number, buttons: number, displayId = 0): boolean {
    if (!this._motionSlot()) return false;
    this.send(InputsMsgc.MOUSE_POSITION, new Writer(11).u32(x).u32(y).u16(buttons).u8(displayId).finish());
    return true;
  }

  /** `button` is a MouseButton, `buttons` the MouseButtonMask state after the press. */
  mousePress(button: number, buttons: number): void {
    this.send(InputsMsgc.MOUSE_PRESS, new Writer(3).u8(button).u16(buttons).finish());
  }

  mouseRelease(button: number, buttons: number): void {
    this.send(InputsMsgc.MOUSE_RELEASE, new Writer(3).u8(button).u16(buttons).finish());
  }

  private _motionSlot(): boolean {
    if (this._unackedMotion >= MAX_UNACKED_MOTION) {
      this.droppedMotion++;
      return false;
    }
    this._unackedMotion++;
    return true;
  }

  protected handleMessage(type: number, body: Uint8Array): void {
    const r = this.reader(body, type);
    switch (type) {
      case InputsMsg.INIT:
      case InputsMsg.KEY_MODIFIERS:
        this.modifiers = r.u16();
        this._onModifiers.fire(this.modifiers);
        return;
      case InputsMsg.MOUSE_MOTION_ACK:
        // Sent once per SPICE_INPUT_MOTION_ACK_BUNCH motion/position messages.
        this._unackedMotion = Math.max(0, this._unackedMotion - MOTION_ACK_BUNCH);
        return;
      default:
        this.ignore(type);
    }
  }

  protected override onClosed(): void {
    this._onModifiers.dispose();
  }
}
