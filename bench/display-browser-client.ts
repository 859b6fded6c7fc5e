// The browser side of bench/display-browser.ts, in its own process: Debian's chromium through playwright-core (as
// the browser tests launch it). Reads one JSON request a line on stdin (a page to load, the canvas to watch, the
// reference picture as a PPM file), answers one JSON line on stdout: when the canvas first equalled the picture.
// Each page gets a fresh browser context (cold cache, its own session cookie).
import { serveJsonDriver } from './json-driver.ts';
import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { parsePpm } from '../test/spice/helpers/qemu.ts';
import { launchChromium } from '../test/web/helpers.ts';
import { benchInPage } from './display-browser-page.ts';

export interface MeasureRequest {
  url: string; selector: string; cookieUrl: string; cookie: string; dump: string;
  /** Largest difference per colour channel a pixel may have and still agree (default 0: exact). */
  tolerance?: number;
  /** After the match, also wait (up to 10 s) for this performance mark of the page (e.g. oriel:first-draw). */
  thenMark?: string;
}
export interface Measured {
  error?: string;
  ms: number;
  /** Bytes that brought the picture: WebSocket messages, plus the server's screen picture (HTTP) when asked. */
  kb: number;
  /** Of which the screen picture's (the console's first picture, server/console/screen-preview.ts). */
  pictureKb: number;
  wsAt: number;
  firstByteAt: number;
  scripts: number;
  /** Navigation and per-socket timings, for the log. */
  detail: string;
  /** The page's clock origin (epoch ms) and its milestones (ms since navigation start): the page's
   * performance marks (oriel:*), the HTML's and the scripts' arrival. For --breakdown. */
  timeOrigin?: number;
  marks?: Record<string, number>;
}

type Sock = { created: number; open: number; first: number; last: number; bytes: number };
type St = { matchedAt: number; wsBytes: number; wsOpened: number[]; firstWsMessage: number; sockets: Sock[] };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const browser = await launchChromium();

/** The reference picture as a PNG (RGB, no colour chunks: the page reads back the same values). */
function pngOf(pic: { width: number; height: number; rgb: Uint8Array }): Buffer {
  const png = new PNG({ width: pic.width, height: pic.height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(pic.rgb);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}

async function measure(req: MeasureRequest): Promise<Measured> {
  const pic = parsePpm(readFileSync(req.dump));
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    await ctx.addCookies([{ name: 'oriel_session', value: req.cookie, url: req.cookieUrl }]);
    const cfg = { selector: req.selector, width: pic.width, height: pic.height,
      pngB64: pngOf(pic).toString('base64'), tolerance: req.tolerance };
    // As source text: tsx keeps function names with a helper (__name) the page does not have.
    await ctx.addInitScript({ content: `var __name = (f) => f; (${benchInPage.toString()})(${JSON.stringify(cfg)});` });
    const page = await ctx.newPage();
    let scripts = 0;
    page.on('request', (r) => { if (r.resourceType() === 'script') scripts++; });
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(req.url);
    const state = () => page.evaluate(() => (globalThis as { __bench?: unknown }).__bench) as Promise<St>;
    const end = Date.now() + 30_000;
    let s = await state();
    while (!s.matchedAt && Date.now() < end) {
      await sleep(100);
      s = await state();
    }
    if (!s.matchedAt) throw new Error(`no match in 30 s: ${JSON.stringify(s)}\n${logs.slice(-15).join('\n')}`);
    const mark = req.thenMark;
    for (let i = 0; mark && i < 100; i++) {
      const seen = await page.evaluate((m) => (globalThis as unknown as {
        performance: { getEntriesByName(n: string): unknown[] } }).performance.getEntriesByName(m).length > 0, mark);
      if (seen) break;
      await sleep(100);
    }
    const timing = await page.evaluate(() => {
      type Entry = { name: string; responseEnd: number; initiatorType?: string; domInteractive?: number };
      const p = (globalThis as unknown as { performance?: { getEntriesByType(t: string): Entry[] } }).performance!;
      const nav = p.getEntriesByType('navigation')[0]!;
      const js = p.getEntriesByType('resource').filter((r) => r.initiatorType === 'script' || /\.js$/.test(r.name));
      const done = Math.max(0, ...js.map((r) => r.responseEnd));
      return `html ${nav.responseEnd.toFixed(0)}, scripts done ${done.toFixed(0)},` +
        ` interactive ${nav.domInteractive?.toFixed(0)}`;
    });
    const marks = await page.evaluate(() => {
      type Entry = { name: string; startTime: number; responseEnd: number; initiatorType?: string };
      const p = (globalThis as unknown as { performance: { timeOrigin: number; getEntriesByType(t: string): Entry[] } })
        .performance;
      const m: Record<string, number> = {};
      m.html = p.getEntriesByType('navigation')[0]!.responseEnd;
      const js = p.getEntriesByType('resource').filter((r) => /\.js$/.test(r.name));
      m.scripts = Math.max(0, ...js.map((r) => r.responseEnd));
      for (const e of p.getEntriesByType('mark')) if (e.name.startsWith('oriel:')) m[e.name.slice(6)] ??= e.startTime;
      return { origin: p.timeOrigin, m };
    });
    const pictureBytes = await page.evaluate(() => {
      type Entry = { name: string; encodedBodySize: number };
      const p = (globalThis as unknown as { performance: { getEntriesByType(t: string): Entry[] } }).performance;
      return p.getEntriesByType('resource').filter((r) => r.name.includes('/console/screen'))
        .reduce((n, r) => n + r.encodedBodySize, 0);
    });
    const sockets = s.sockets.map((k) => `[${k.created} open ${k.open} rx ${k.first}-${k.last} ` +
      `${(k.bytes / 1024).toFixed(0)}K]`).join(' ');
    return { ms: s.matchedAt, kb: (s.wsBytes + pictureBytes) / 1024, pictureKb: pictureBytes / 1024,
      wsAt: s.wsOpened[0] ?? 0, firstByteAt: s.firstWsMessage,
      scripts, detail: `${timing}; sockets ${sockets}`, timeOrigin: marks.origin, marks: marks.m };
  } finally {
    await ctx.close();
  }
}

await serveJsonDriver<MeasureRequest, Measured>(measure,
  (error) => ({ error, ms: 0, kb: 0, pictureKb: 0, wsAt: 0, firstByteAt: 0, scripts: 0, detail: '' }));
await browser.close();
