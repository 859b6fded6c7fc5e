// The browser half of bench/slow-link.ts: Oriel's web console and spice-html5 (Debian's package, served with its
// WebSocket by websockify --web, so the page load crosses the link too) in chromium, driven by
// bench/display-browser-client.ts in a child process. A picture counts as arrived when the page's canvas agrees with
// QMP screendump within a tolerance (JPEG on a slow link is lossy; display-browser-page.ts).
import { startJsonDriver } from './json-driver.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Measured, MeasureRequest } from './display-browser-client.ts';

const HTML5_DIR = '/usr/share/spice-html5';

/** bench/display-browser-client.ts in a child process: one request, one answer, in turn. */
export const startBrowserDriver = () =>
  startJsonDriver<MeasureRequest, Measured>(join(import.meta.dirname, 'display-browser-client.ts'));

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const a = s.address();
  await new Promise((r) => s.close(r));
  return typeof a === 'object' && a ? a.port : 0;
}

/** websockify serving spice-html5 and a page that connects to QEMU (its password in the page: a bench guest). */
export async function startHtml5(spicePort: number, password: string): Promise<{ port: number; stop(): void }> {
  if (!readdirSync(HTML5_DIR).includes('main.js')) throw new Error(`${HTML5_DIR}: apt-get install spice-html5`);
  const web = mkdtempSync(join(tmpdir(), 'obench-html5-'));
  for (const f of readdirSync(HTML5_DIR)) symlinkSync(join(HTML5_DIR, f), join(web, f));
  // The page connects back to whatever host and port served it: the shaped relay in front of websockify.
  writeFileSync(join(web, 'bench.html'), `<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" type="text/css" href="spice.css"></head><body>
<div id="spice-area"><div id="spice-screen" class="spice-screen"></div></div><div id="message-div"></div>
<script type="module">
import * as SpiceHtml5 from './main.js';
window.sc = new SpiceHtml5.SpiceMainConn({ uri: 'ws://' + location.host + '/websockify', screen_id: 'spice-screen',
  message_id: 'message-div', password: ${JSON.stringify(password)}, onerror: (e) => console.log('spice error', e) });
</script></body></html>`);
  const port = await freePort();
  const ws: ChildProcess = spawn('websockify', ['--web', web, `127.0.0.1:${port}`, `127.0.0.1:${spicePort}`],
    { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(true));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    stop() {
      ws.kill();
      rmSync(web, { recursive: true, force: true });
    },
  };
}
