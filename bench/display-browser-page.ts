// The in-page half of bench/display-browser.ts: a script added to every page before its own scripts run. It
// counts the bytes of every WebSocket message the page receives, and on each animation frame compares the page's
// console canvas (its RGB) with the reference picture (QMP screendump); the first frame where they agree gives
// `window.__bench.matchedAt` (ms since navigation start). Both clients are measured by the same code. With a
// `tolerance` (lossy JPEG on a slow link, bench/slow-link.ts) a pixel agrees when no channel is off by more, and the
// picture when at most 0.5 % of its pixels do not.

/* eslint-disable @typescript-eslint/no-explicit-any -- the page's globals: this file is checked as Node code */
/** Serialised as the init script; runs in the browser. `cfg` carries the reference and the canvas selector. */
export function benchInPage(
  cfg: { selector: string; width: number; height: number; pngB64: string; tolerance?: number },
): void {
  const w = globalThis as any;
  // The reference comes as a PNG, decoded off the page's main thread (img.decode), then read back as RGBA: not a
  // base64 loop here, which took ~200 ms of main thread before any of the page's own scripts could run (both
  // clients). The pages' CSP allows data: images (not data: fetches).
  // (img.decode() was seen to fail now and then this early in a page; onload does not.)
  let ref: Uint8ClampedArray | undefined;
  const img = new w.Image();
  img.onload = () => {
    const c = new w.OffscreenCanvas(cfg.width, cfg.height).getContext('2d', { willReadFrequently: true });
    c.drawImage(img, 0, 0);
    ref = c.getImageData(0, 0, cfg.width, cfg.height).data;
  };
  img.onerror = () => w.console.log('bench: the reference picture did not load');
  img.src = `data:image/png;base64,${cfg.pngB64}`;
  const state = { matchedAt: 0, wsBytes: 0, wsOpened: [] as number[], firstWsMessage: 0, checks: 0, differing: -1,
    sockets: [] as { created: number; open: number; first: number; last: number; bytes: number }[] };
  w.__bench = state;

  const NativeWs = w.WebSocket;
  class CountingWs extends NativeWs {
    constructor(...args: unknown[]) {
      super(...args);
      const now = () => Math.round(w.performance.now());
      state.wsOpened.push(w.performance.now());
      const sock = { created: now(), open: 0, first: 0, last: 0, bytes: 0 };
      state.sockets.push(sock);
      this.addEventListener('open', () => (sock.open = now()));
      this.addEventListener('message', (ev: { data: unknown }) => {
        if (!state.firstWsMessage) state.firstWsMessage = w.performance.now();
        const d = ev.data as any;
        const n = typeof d === 'string' ? d.length : (d.byteLength ?? d.size ?? 0);
        state.wsBytes += n;
        if (state.matchedAt) return;
        sock.bytes += n;
        sock.first ||= now();
        sock.last = now();
      });
    }
  }
  w.WebSocket = CountingWs;

  const total = cfg.width * cfg.height;
  const tol = cfg.tolerance ?? 0;
  const allowed = tol ? Math.floor(total * 0.005) : 0;
  const off = (x: number, y: number) => (x > y ? x - y : y - x) > tol;
  const compare = (px: Uint8ClampedArray, step: number): number => {
    const ref0 = ref!;
    let diff = 0;
    for (let p = 0; p < total; p += step) {
      const a = p * 4;
      const b = a;
      if (off(ref0[a]!, px[b]!) || off(ref0[a + 1]!, px[b + 1]!) || off(ref0[a + 2]!, px[b + 2]!)) diff++;
    }
    return diff;
  };
  const check = () => {
    if (state.matchedAt) return;
    const c = w.document.querySelector(cfg.selector);
    if (ref && c && c.width === cfg.width && c.height === cfg.height) {
      const px = c.getContext('2d').getImageData(0, 0, cfg.width, cfg.height).data as Uint8ClampedArray;
      state.checks++;
      // A sample first (cheap while the picture is still arriving), then every pixel.
      if (compare(px, 97) <= allowed / 97) {
        state.differing = compare(px, 1);
        if (state.differing <= allowed) {
          state.matchedAt = w.performance.now();
          return;
        }
      }
    }
    next();
  };
  // After the frame's own animation-frame callbacks (a client that paints on one is seen in that frame).
  const next = () => w.requestAnimationFrame(() => w.setTimeout(check, 0));
  next();
}
