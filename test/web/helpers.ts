// Browser tests: the built UI (dist/web, rebuilt here when its sources are newer), Debian's chromium driven by
// playwright-core (never a downloaded browser), and small helpers to read what the page shows.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { keystrokesForText } from '../../src/spice/keymap-us.ts';

// page.evaluate callbacks run in the browser; the Node tsconfig (tsconfig.node.json) has no DOM lib, so these few
// globals are declared.
declare const document: any;

const ROOT = resolve(import.meta.dirname, '../..');
export const DOCS = join(ROOT, 'docs');

function newest(dir: string): number {
  let t = 0;
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    const s = statSync(p);
    t = Math.max(t, s.isDirectory() ? newest(p) : s.mtimeMs);
  }
  return t;
}

/** Runs `npx vite build` when dist/web is missing or older than the sources it is built from, or vite.config.ts. */
export function ensureWebBuild(): void {
  const index = join(ROOT, 'dist/web/index.html');
  const sources = Math.max(
    newest(join(ROOT, 'src/web')),
    newest(join(ROOT, 'src/spice')),
    newest(join(ROOT, 'src/spice-web')),
    newest(join(ROOT, 'src/api')),
    statSync(join(ROOT, 'vite.config.ts')).mtimeMs,
  );
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  execFileSync('npx', ['vite', 'build', '--logLevel', 'warn'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
}

export function launchChromium(): Promise<Browser> {
  // launch() gives every run a fresh temporary profile (its own --user-data-dir).
  return chromium.launch({
    executablePath: process.env.ORIEL_CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export async function signIn(page: Page, base: string, user: string, password: string, path = '/'): Promise<void> {
  await page.goto(base + path);
  await page.waitForSelector('#login-username');
  await page.fill('#login-username', user);
  await page.fill('#login-password', password);
  await page.click('#login-submit');
  await page.waitForSelector('#current-user');
}

/** The console canvas as RGBA (through a lossless PNG: small for a text console). */
export async function canvasPixels(page: Page): Promise<{ width: number; height: number; data: Uint8Array }> {
  const url = await page.evaluate(() => document.getElementById('console-canvas').toDataURL('image/png') as string);
  const png = PNG.sync.read(Buffer.from(url.slice(url.indexOf(',') + 1), 'base64'));
  return {
    width: png.width,
    height: png.height,
    data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length),
  };
}

export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
  everyMs = 250,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/**
 * Types `text` as a person on a US keyboard does: Shift pressed and released around shifted characters.
 * (playwright's keyboard.type sends '>' as the Period key with no Shift key event: fine for a text field, but a
 * console that sends key positions then types '.'.)
 */
export async function typeKeys(page: Page, text: string, delayMs = 25): Promise<void> {
  for (const k of keystrokesForText(text)) {
    if (k.shift) await page.keyboard.down('Shift');
    await page.keyboard.press(k.code);
    if (k.shift) await page.keyboard.up('Shift');
    await new Promise((r) => setTimeout(r, delayMs));
  }
}
