// The console's drawing: the display channel draws into an RgbaSurface (the core's plain RGBA buffer); an ImageData
// over the same memory is blitted to the canvas once per animation frame, only the rectangle that changed. Also the
// layout: the screen scaled to the console area ('fit'), 1:1 ('none'), or 1:1 once the guest took the area's size
// ('remote', guest-size.ts).
import { RgbaSurface, type DisplayChannel, type Rect } from '../spice/index.ts';

/** fit: scaled to the area; none: 1:1 with scroll bars; remote: the guest is asked for the area's size, shown 1:1. */
export type ScaleMode = 'fit' | 'none' | 'remote';

export interface ScreenHost {
  /** The console's root element (its size is the area). */
  element: HTMLElement;
  /** The guest screen's size changed. */
  onResize?: (width: number, height: number) => void;
  /** Once per animation frame after drawing (the pointer sends its gathered motion). */
  onFrame(): void;
  /** The layout changed (the cursor drawn over the screen follows the scale). */
  onLayout(): void;
  /** The display channel drew for the first time (the server's picture is not needed any more). */
  onFirstDraw?(): void;
}

export class Screen {
  /** Holds the canvas and the cursor drawn over it; pointer events are taken here. */
  readonly box: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  readonly stats = { frames: 0 };
  scaleMode: ScaleMode = 'fit';
  /** CSS pixels per guest pixel. */
  scale = 1;
  private readonly _ctx: CanvasRenderingContext2D;
  private _surface: { id: number; rgba: RgbaSurface; image: ImageData } | undefined;
  private _dirty: Rect | null = null;
  private _drawn = false;
  private _raf = 0;
  /** The size of the server's picture of the screen, shown until the display channel first draws (showPicture). */
  private _picture: { width: number; height: number } | undefined;
  private _disposed = false;

  constructor(private readonly _h: ScreenHost) {
    this.box = document.createElement('div');
    this.box.className = 'spice-screen';
    this.canvas = document.createElement('canvas');
    this.canvas.id = 'console-canvas';
    this.canvas.width = 640;
    this.canvas.height = 400;
    this.box.append(this.canvas);
    this._ctx = this.canvas.getContext('2d', { alpha: false })!;
    this._ctx.fillStyle = '#000';
    this._ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
  }

  /** Guest screen size in pixels, once known. */
  get size(): { width: number; height: number } | undefined {
    return this._surface ? { width: this._surface.rgba.width, height: this._surface.rgba.height } : undefined;
  }

  attach(d: DisplayChannel): void {
    const take = () => {
      const p = d.primary;
      if (p && p.surface instanceof RgbaSurface) this._useSurface(p.info.id, p.surface);
    };
    take();
    d.onSurfaceCreated((info) => { if (info.primary) take(); });
    d.onInvalidate((ev) => {
      if (!this._drawn) {
        performance.mark('oriel:first-draw');
        this._h.onFirstDraw?.();
      }
      this._drawn = true;
      this._picture = undefined;
      if (this._surface && ev.surfaceId === this._surface.id) this._markDirty(ev.rect);
    });
  }

  /** Asks for an animation frame (drawing and the pointer's motion go out then). */
  schedule(): void {
    if (!this._raf) this._raf = requestAnimationFrame(() => this._frame());
  }

  layout(): void {
    const w = this.canvas.width;
    const h = this.canvas.height;
    const box = this._h.element.getBoundingClientRect();
    const sized = box.width > 0 && box.height > 0;
    // 'remote' shows the guest 1:1 once it took the area's size; until then (or if it cannot) it is scaled down
    // to fit, never up.
    if (this.scaleMode === 'fit' && sized) this.scale = Math.min(box.width / w, box.height / h);
    else if (this.scaleMode === 'remote' && sized) this.scale = Math.min(1, box.width / w, box.height / h);
    else this.scale = 1;
    this.box.style.width = `${Math.floor(w * this.scale)}px`;
    this.box.style.height = `${Math.floor(h * this.scale)}px`;
    this._h.element.dataset.scale = this.scaleMode;
    this._h.onLayout();
  }

  /** The guest pixel under a mouse event, clamped to the screen. */
  guestPoint(e: MouseEvent): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    const x = Math.floor(((e.clientX - r.left) / r.width) * this.canvas.width);
    const y = Math.floor(((e.clientY - r.top) / r.height) * this.canvas.height);
    return { x: Math.max(0, Math.min(this.canvas.width - 1, x)), y: Math.max(0, Math.min(this.canvas.height - 1, y)) };
  }

  /**
   * Shows `bmp` (the VM's screen as the server took it, screen-preview.ts) until the display channel draws: its first
   * picture comes only after the link, the network test and the display link; this one is there before. Each draw
   * then replaces its own rectangle, so the two never mix pictures of different moments for long.
   */
  showPicture(bmp: ImageBitmap): void {
    const s = this._surface?.rgba;
    if (this._drawn || this._disposed || (s && (s.width !== bmp.width || s.height !== bmp.height))) {
      bmp.close();
      return;
    }
    this._picture = { width: bmp.width, height: bmp.height };
    if (s) this._dirty = null; // the surface is still empty: blitting it would hide the picture
    if (this.canvas.width !== bmp.width || this.canvas.height !== bmp.height) {
      this.canvas.width = bmp.width;
      this.canvas.height = bmp.height;
      this._h.onResize?.(bmp.width, bmp.height);
    }
    this._ctx.drawImage(bmp, 0, 0);
    bmp.close();
    this.layout();
    performance.mark('oriel:picture');
  }

  dispose(): void {
    this._disposed = true;
    cancelAnimationFrame(this._raf);
    this._picture = undefined;
  }

  private _useSurface(id: number, rgba: RgbaSurface): void {
    // The same memory the display channel draws into: no copy per frame.
    const data = new Uint8ClampedArray(
      rgba.data.buffer as ArrayBuffer,
      rgba.data.byteOffset,
      rgba.width * rgba.height * 4,
    );
    this._surface = { id, rgba, image: new ImageData(data, rgba.width, rgba.height) };
    const p = this._picture;
    // The server's picture stays until the first draw when it has the surface's size (the surface is empty yet).
    const keep = p !== undefined && !this._drawn && p.width === rgba.width && p.height === rgba.height;
    if (this.canvas.width !== rgba.width || this.canvas.height !== rgba.height) {
      this.canvas.width = rgba.width;
      this.canvas.height = rgba.height;
      this._h.onResize?.(rgba.width, rgba.height);
    }
    this.layout();
    if (keep) return;
    this._picture = undefined;
    this._markDirty({ left: 0, top: 0, right: rgba.width, bottom: rgba.height });
  }

  private _markDirty(r: Rect): void {
    const d = this._dirty;
    this._dirty = d
      ? {
          left: Math.min(d.left, r.left),
          top: Math.min(d.top, r.top),
          right: Math.max(d.right, r.right),
          bottom: Math.max(d.bottom, r.bottom),
        }
      : { ...r };
    this.schedule();
  }

  private _frame(): void {
    this._raf = 0;
    const d = this._dirty;
    this._dirty = null;
    const s = this._surface;
    if (d && s) {
      this._ctx.putImageData(s.image, 0, 0, d.left, d.top, d.right - d.left, d.bottom - d.top);
      if (!this.stats.frames) performance.mark('oriel:first-paint');
      this.stats.frames++;
    }
    this._h.onFrame();
  }
}
