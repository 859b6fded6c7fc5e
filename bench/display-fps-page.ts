// The in-page half of bench/display-fps.ts: a script added to every page before its own scripts run. On each
// animation frame (after the page's own frame callbacks) it reads the band of rows of the console canvas that the
// window moves through and compares it with what it read on the frame before: a frame whose band changed is a frame
// painted, noted with its time (ms since the epoch, to line up with the bench's clock). The comparison looks at every
// third pixel of every third row (a window moving by a few pixels changes many of them). Counts only between
// `__fps.start()` and `__fps.stop()`; also counts the WebSocket bytes the page receives. Both browser clients are
// measured by the same code.

/* eslint-disable @typescript-eslint/no-explicit-any -- the page's globals: this file is checked as Node code */
/** Serialised as the init script; runs in the browser. */
export function fpsInPage(cfg: { selector: string; rows: [number, number] }): void {
  const w = globalThis as any;
  const state = {
    counting: false, frames: 0, paintedAt: [] as number[], wsBytes: 0, width: 0, height: 0, checkMs: 0,
    start() {
      state.counting = true;
      state.frames = state.wsBytes = state.checkMs = 0;
      state.paintedAt = [];
    },
    stop() {
      state.counting = false;
    },
  };
  w.__fps = state;

  const NativeWs = w.WebSocket;
  class CountingWs extends NativeWs {
    constructor(...args: unknown[]) {
      super(...args);
      this.addEventListener('message', (ev: { data: unknown }) => {
        const d = ev.data as any;
        if (state.counting) state.wsBytes += typeof d === 'string' ? d.length : (d.byteLength ?? d.size ?? 0);
      });
    }
  }
  w.WebSocket = CountingWs;

  let prev: Uint32Array | undefined;
  const STEP = 3;
  const check = () => {
    const c = w.document.querySelector(cfg.selector);
    if (c && c.width > 0 && c.height > 0) {
      state.width = c.width;
      state.height = c.height;
      if (state.counting) {
        const t0 = w.performance.now();
        const y0 = Math.min(cfg.rows[0], c.height - 1);
        const h = Math.min(cfg.rows[1], c.height) - y0;
        const px = new Uint32Array(c.getContext('2d').getImageData(0, y0, c.width, h).data.buffer);
        const n = Math.ceil(h / STEP) * Math.ceil(c.width / STEP);
        const cur = prev?.length === n ? prev : new Uint32Array(n);
        let changed = prev !== cur;
        let k = 0;
        for (let y = 0; y < h; y += STEP) {
          for (let x = 0, row = y * c.width; x < c.width; x += STEP, k++) {
            const v = px[row + x]!;
            if (cur[k] !== v) {
              changed = true;
              cur[k] = v;
            }
          }
        }
        state.frames++;
        if (changed && prev) state.paintedAt.push(w.performance.timeOrigin + t0);
        prev = cur;
        state.checkMs += w.performance.now() - t0;
      } else {
        prev = undefined;
      }
    }
    next();
  };
  const next = () => w.requestAnimationFrame(() => w.setTimeout(check, 0));
  next();
}
