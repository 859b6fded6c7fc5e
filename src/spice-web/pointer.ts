// The console's mouse: absolute positions when the server is in client mouse mode (a tablet or the agent in the
// guest), relative motion otherwise, with pointer lock once the console is clicked (Esc releases it). Motion is
// gathered and sent once per animation frame; the inputs channel drops it while the server has not acknowledged
// enough, and it is then sent on the next frame.
import { MouseButton, MouseButtonMask, type InputsChannel } from '../spice/index.ts';

export interface PointerHost {
  /** The screen box: pointer lock is asked for it. */
  box: HTMLElement;
  inputs(): InputsChannel | undefined;
  mouseMode(): 'client' | 'server';
  /** The guest pixel under a mouse event. */
  guestPoint(e: MouseEvent): { x: number; y: number };
  /** Asks for an animation frame, which calls flush(). */
  schedule(): void;
  focus(): void;
  /** Counts a mouse message sent. */
  onSent(): void;
}

const BUTTONS: Record<number, [number, number]> = {
  0: [MouseButton.LEFT, MouseButtonMask.LEFT],
  1: [MouseButton.MIDDLE, MouseButtonMask.MIDDLE],
  2: [MouseButton.RIGHT, MouseButtonMask.RIGHT],
};

export class Pointer {
  /** Whether the pointer is locked to the screen box (server mouse mode). */
  locked = false;
  private _buttons = 0;
  private _motion = { dx: 0, dy: 0 };
  private _position: { x: number; y: number } | null = null;

  constructor(private readonly _h: PointerHost) {}

  onMove(e: MouseEvent): void {
    if (this._h.mouseMode() === 'client') this._position = this._h.guestPoint(e);
    else {
      // Relative: movementX/Y are device deltas; with pointer lock they are all there is.
      this._motion.dx += e.movementX;
      this._motion.dy += e.movementY;
    }
    this._h.schedule();
  }

  /** Sends the gathered motion (once per animation frame). */
  flush(): void {
    const inputs = this._h.inputs();
    if (!inputs) return;
    const mode = this._h.mouseMode();
    if (mode === 'client' && this._position) {
      if (inputs.mousePosition(this._position.x, this._position.y, this._buttons)) {
        this._position = null;
        this._h.onSent();
      } else this._h.schedule();
    } else if (mode === 'server' && (this._motion.dx || this._motion.dy)) {
      if (inputs.mouseMotion(this._motion.dx, this._motion.dy, this._buttons)) {
        this._motion = { dx: 0, dy: 0 };
        this._h.onSent();
      } else this._h.schedule();
    }
  }

  onButton(e: MouseEvent, down: boolean): void {
    const b = BUTTONS[e.button];
    if (!b) return;
    if (down) {
      e.preventDefault();
      this._h.focus();
      if (this._h.mouseMode() === 'server' && !this.locked) {
        // Returns a promise in Chromium, undefined elsewhere; refusal just leaves hover-relative motion.
        try {
          void (this._h.box.requestPointerLock() as unknown as Promise<void> | undefined)?.catch(() => undefined);
        } catch {
          /* no pointer lock */
        }
      }
    } else if (!(this._buttons & b[1])) {
      return; // a release of a press that did not start on the console
    }
    const inputs = this._h.inputs();
    if (!inputs) return;
    if (this._h.mouseMode() === 'client') this._position = this._h.guestPoint(e);
    this.flush();
    this._buttons = down ? this._buttons | b[1] : this._buttons & ~b[1];
    if (down) inputs.mousePress(b[0], this._buttons);
    else inputs.mouseRelease(b[0], this._buttons);
    this._h.onSent();
  }

  onWheel(e: WheelEvent): void {
    e.preventDefault();
    const inputs = this._h.inputs();
    if (!inputs || e.deltaY === 0) return;
    const [button, mask] =
      e.deltaY < 0 ? [MouseButton.UP, MouseButtonMask.UP] : [MouseButton.DOWN, MouseButtonMask.DOWN];
    inputs.mousePress(button, this._buttons | mask);
    inputs.mouseRelease(button, this._buttons);
    this._h.onSent();
  }

  /** Releases in the guest the buttons held through this console (focus left, session ended). */
  releaseAll(inputs: InputsChannel | undefined): void {
    if (inputs) {
      for (const [, [button, bit]] of Object.entries(BUTTONS)) {
        if (this._buttons & bit) inputs.mouseRelease(button, this._buttons &= ~bit);
      }
    }
    this._buttons = 0;
  }
}
