// The browser side of bench/display-fps.ts, in its own process (Playwright's traffic must not load the process that
// runs the Oriel server): Debian's chromium through playwright-core, as the browser tests launch it. Reads one JSON
// command a line on stdin and answers one JSON line on stdout:
//   {cmd: 'open', url, selector, rows, cookie…}      a fresh context and page; answers once the canvas is there
//   {cmd: 'start'} / {cmd: 'stop'}                    counting painted frames (display-fps-page.ts); stop answers them
//   {cmd: 'close'}                                    closes the page's context
import { serveJsonDriver } from './json-driver.ts';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../test/web/helpers.ts';
import { fpsInPage } from './display-fps-page.ts';

export type FpsCommand =
  | { cmd: 'open'; url: string; selector: string; rows: [number, number]; cookieUrl: string; cookie: string }
  | { cmd: 'start' | 'stop' | 'close' };
export interface FpsAnswer {
  error?: string;
  width?: number;
  height?: number;
  /** Animation frames checked, when those whose canvas changed ran (ms since the epoch), WebSocket bytes in, ms spent
   * reading the canvas. */
  frames?: number;
  paintedAt?: number[];
  wsBytes?: number;
  checkMs?: number;
  /** The page's clock (ms since the epoch) when it answered `stop`. */
  now?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const browser = await launchChromium();
let ctx: BrowserContext | undefined;
let page: Page | undefined;
const logs: string[] = [];

type PageState = {
  frames: number; paintedAt: number[]; wsBytes: number; width: number; height: number; checkMs: number;
};
const state = () => page!.evaluate(() => (globalThis as unknown as { __fps: PageState }).__fps);

async function run(c: FpsCommand): Promise<FpsAnswer> {
  if (c.cmd === 'open') {
    ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await ctx.addCookies([{ name: 'oriel_session', value: c.cookie, url: c.cookieUrl }]);
    // As source text: tsx keeps function names with a helper (__name) the page does not have.
    await ctx.addInitScript({ content: `var __name = (f) => f; (${fpsInPage.toString()})(${JSON.stringify(
      { selector: c.selector, rows: c.rows })});` });
    page = await ctx.newPage();
    logs.length = 0;
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    await page.goto(c.url);
    const end = Date.now() + 30_000;
    for (let s = await state(); Date.now() < end; s = await state()) {
      if (s.width > 0) return { width: s.width, height: s.height };
      await sleep(100);
    }
    return { error: `no canvas in 30 s\n${logs.slice(-10).join('\n')}` };
  }
  if (!page) return { error: 'no page open' };
  if (c.cmd === 'start') {
    await page.evaluate(() => (globalThis as unknown as { __fps: { start(): void } }).__fps.start());
    return {};
  }
  if (c.cmd === 'stop') {
    const s = await page.evaluate(() => {
      const f = (globalThis as unknown as { __fps: PageState & { stop(): void } }).__fps;
      f.stop();
      const p = (globalThis as unknown as { performance: { timeOrigin: number; now(): number } }).performance;
      return { frames: f.frames, paintedAt: f.paintedAt, wsBytes: f.wsBytes, checkMs: f.checkMs,
        now: p.timeOrigin + p.now() };
    });
    return s;
  }
  await ctx?.close();
  ctx = page = undefined;
  return {};
}

await serveJsonDriver<FpsCommand, FpsAnswer>(run, (error) => ({ error }));
await browser.close();
