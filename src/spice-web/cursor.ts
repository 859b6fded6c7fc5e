// The guest's cursor from the cursor channel: in client mouse mode shown as the local CSS cursor (the local pointer
// is where the guest's is), in server mode drawn over the screen where the guest has it.
import type { CursorChannel, CursorState } from '../spice/index.ts';

export interface CursorHost {
  /** The element the local cursor is set on (the screen box). */
  box: HTMLElement;
  /** What the cursor's look depends on: the mouse mode, pointer lock, the screen's scale. */
  view(): { mouseMode: 'client' | 'server'; locked: boolean; scale: number };
}

export class CursorView {
  /** The cursor drawn over the screen (server mouse mode). */
  readonly canvas: HTMLCanvasElement;
  private _state: CursorState | undefined;
  private _url = '';

  constructor(private readonly _h: CursorHost) {
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'spice-cursor';
    this.canvas.hidden = true;
  }

  attach(c: CursorChannel): void {
    let shape: CursorState['shape'] | undefined;
    const update = (s: CursorState) => {
      this._state = s;
      if (s.shape !== shape) {
        shape = s.shape;
        if (shape) {
          this.canvas.width = shape.image.width;
          this.canvas.height = shape.image.height;
          const px = new Uint8ClampedArray(shape.image.data.length);
          px.set(shape.image.data);
          const img = new ImageData(px, shape.image.width, shape.image.height);
          this.canvas.getContext('2d')!.putImageData(img, 0, 0);
          this._url = `url(${this.canvas.toDataURL()}) ${shape.hotX} ${shape.hotY}, default`;
        } else {
          this._url = '';
        }
      }
      this.update();
    };
    update(c.state);
    c.onChange(update);
  }

  /** Shows the cursor as the mode asks (call after the mouse mode or pointer lock changed). */
  update(): void {
    const s = this._state;
    const { mouseMode, locked } = this._h.view();
    if (mouseMode === 'client') {
      this.canvas.hidden = true;
      this._h.box.style.cursor = s && !s.visible ? 'none' : this._url || 'default';
    } else {
      this._h.box.style.cursor = locked ? 'none' : 'crosshair';
      this.canvas.hidden = !(s?.visible && s.shape);
      this.place();
    }
  }

  /** Puts the drawn cursor where the guest has it, at the screen's scale. */
  place(): void {
    const s = this._state;
    if (!s?.shape || this.canvas.hidden) return;
    const k = this._h.view().scale;
    Object.assign(this.canvas.style, {
      left: `${(s.x - s.shape.hotX) * k}px`,
      top: `${(s.y - s.shape.hotY) * k}px`,
      width: `${s.shape.image.width * k}px`,
      height: `${s.shape.image.height * k}px`,
    });
  }
}
