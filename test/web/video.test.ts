// Video streams decoded by WebCodecs in the browser console. QEMU 7.2 with `streaming-video=all` (ORIEL_SPICE_VIDEO)
// and SPICE over loopback TCP; spice-server encodes with GStreamer (vp8enc, x264enc, vp9enc) the codec the console
// prefers. The tiny guest plays a loop of photo-like pictures into the top-left 320×240 of /dev/fb0: the page's
// console decodes VP8 frames (counted), then, preferring H.264 for the next stream, H.264 frames, then VP9; no MJPEG
// meanwhile. While it plays, QMP screendump shows one of the loop's pictures exactly, and the canvas one of them
// within PSNR ≥ 30 dB (the closest: page and screendump are not taken at the same instant). Then a page behind a
// shaped 5 Mbit/s link takes the console over: spice-server measures the slow link and sends a photo-like picture as
// JPEG (counted by the page's console, imageStats), shown within PSNR ≥ 30 dB.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../helpers/server.ts';
import { ShapedRelay } from '../helpers/shaped-relay.ts';
import { ensureTinyImage } from '../helpers/images.ts';
import { parsePpm } from '../spice/helpers/qemu.ts';
import { photo } from '../spice/helpers/tiny-guest.ts';
import { canvasPixels, ensureWebBuild, launchChromium, signIn, until } from './helpers.ts';

process.env.ORIEL_SPICE_TCP = '1'; // spice-server measures and streams for TCP clients (vm/spice-endpoint.ts)
process.env.ORIEL_SPICE_VIDEO = 'all';

declare const window: any;

const VM = 'video1';
const W = 320;
const H = 240;
const FRAMES = 6;

interface VideoStats {
  decoded: Record<string, number>;
  streams: Record<string, number>;
  lastError?: string;
}

/** PSNR (dB) of the w×h top-left corner of an RGB(A) picture `stride` pixels wide against a w×h BGRX picture. */
function psnr(bgrx: Buffer, pic: Uint8Array, stride: number, bpp: number, w = W, h = H): number {
  let se = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const a = (y * w + x) * 4;
      const b = (y * stride + x) * bpp;
      for (let c = 0; c < 3; c++) se += (bgrx[a + 2 - c]! - pic[b + c]!) ** 2;
    }
  }
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255 * w * h * 3) / se);
}

describe('video streams in the browser: VP8, H.264 and VP9 through WebCodecs; JPEG on a slow link', () => {
  let t: TestServer;
  let browser: Browser;
  let page: Page;
  let fbWidth = 0;
  const pictures = Array.from({ length: FRAMES }, (_, i) => photo(W, H, i + 1));
  const dump = join(tmpdir(), `oriel-video-${process.pid}.ppm`);
  const pageErrors: string[] = [];

  const exec = async (script: string) => {
    const r = await t.admin.post(`/api/vms/${VM}/exec`, { argv: ['sh', '-c', script], timeoutSec: 60 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.exitCode, 0, r.body.stderr);
    return r.body.stdout as string;
  };
  /** Stores bytes as /tmp/<name> in the guest, over its command shell (with stdin). */
  const upload = async (name: string, bytes: Buffer) => {
    const shell = (t.server.ctx.vms as any).runtimes.get(t.server.ctx.vms.get(VM).id).shell;
    const r = await shell.execScript(`base64 -d | gunzip > /tmp/${name}`, {
      input: gzipSync(bytes, { level: 9 }).toString('base64'),
      timeoutMs: 60_000,
    });
    assert.equal(r.exitCode, 0, r.stderr);
  };
  const stats = (): Promise<VideoStats> => page.evaluate(() => window.orielConsole.videoStats);

  /** The best PSNR of the canvas against the loop's pictures, over a few samples while it plays. */
  async function canvasPsnr(): Promise<number> {
    let best = 0;
    for (let i = 0; i < 30 && best < 40; i++) {
      const c = await canvasPixels(page);
      for (const p of pictures) best = Math.max(best, psnr(p, c.data, c.width, 4));
      await new Promise((r) => setTimeout(r, 100));
    }
    return best;
  }

  /** QMP screendump while it plays: one of the loop's pictures, exactly (a torn write can be caught: retried). */
  async function screendumpIsALoopPicture(): Promise<boolean> {
    for (let i = 0; i < 10; i++) {
      await t.server.ctx.vms.qmp(VM).execute('screendump', { filename: dump, format: 'ppm' });
      const ppm = parsePpm(readFileSync(dump));
      if (pictures.some((p) => psnr(p, ppm.rgb, ppm.width, 3) === Infinity)) return true;
    }
    return false;
  }

  const play = () =>
    exec(
      `touch /tmp/play; (i=0; while [ -e /tmp/play ]; do cat /tmp/f$((i % ${FRAMES})) > /dev/fb0; i=$((i + 1)); ` +
        'usleep 60000; done) >/dev/null 2>&1 &',
    );

  before(async () => {
    await ensureTinyImage();
    ensureWebBuild();
    t = await startTestServer();
    assert.equal((await t.admin.post('/api/vms', { name: VM, image: 'tiny', memoryMiB: 160, display: 'qxl' })).status, 201);
    assert.equal((await t.admin.post(`/api/vms/${VM}/start`)).body.state, 'running');
    fbWidth = Number((await exec('cat /sys/class/graphics/fb0/virtual_size')).split(',')[0]);
    await exec('echo 0 > /sys/class/graphics/fbcon/cursor_blink');
    // The pictures as fb0 rows (black right of them), sent over the guest's command shell with stdin.
    for (const [i, p] of pictures.entries()) {
      const rows = Buffer.alloc(fbWidth * H * 4);
      for (let y = 0; y < H; y++) p.copy(rows, y * fbWidth * 4, y * W * 4, (y + 1) * W * 4);
      await upload(`f${i}`, rows);
    }
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    if (process.env.DEBUG_VIDEO) page.on('console', (m) => console.log('page:', m.text()));
    await signIn(page, t.url, 'admin', ADMIN_PASSWORD);
    await page.goto(`${t.url}/vms/${VM}/console`);
    await page.waitForSelector('#console-status[data-status=connected]', { timeout: 30_000 });
  });
  after(async () => {
    rmSync(dump, { force: true });
    await browser?.close();
    await t?.destroy();
  });

  for (const codec of ['vp8', 'h264', 'vp9']) {
    test(`${codec}: a moving picture is streamed in ${codec} and decoded by WebCodecs; PSNR ≥ 30 dB`, async (tc) => {
      await until('the display channel', () => page.evaluate((c) => window.orielConsole?.preferVideoCodecs([c]), codec));
      const before = await stats();
      await play();
      try {
        const s = await until(
          `20 ${codec} frames`,
          async () => {
            const s = await stats();
            return s.decoded[codec]! - before.decoded[codec]! >= 20 && s;
          },
          30_000,
          200,
        ).catch(async (e: Error) => assert.fail(`${e.message}: ${JSON.stringify(await stats())}`));
        assert.ok(await screendumpIsALoopPicture(), 'screendump shows one of the pictures while it plays');
        const db = await canvasPsnr();
        const after = await stats();
        assert.ok(db >= 30, `canvas PSNR ${db.toFixed(1)} dB against the closest picture`);
        assert.equal(after.decoded.mjpeg, before.decoded.mjpeg, 'no MJPEG stream meanwhile');
        assert.equal(after.streams.failed ?? 0, 0, `no decoder failed: ${after.lastError}`);
        tc.diagnostic(`${codec}: ${after.decoded[codec]! - before.decoded[codec]!} frames, PSNR ${db.toFixed(1)} dB, ` +
          `streams ${JSON.stringify(s.streams)}`);
      } finally {
        await exec('rm -f /tmp/play');
      }
      // The stream ends when updates stop (spice-server RED_STREAM_TIMEOUT, 1 s): the next one starts anew.
      await until('the stream to end', async () => {
        return (await stats()).streams.playing === 0;
      }, 10_000, 200);
      assert.deepEqual(pageErrors, []);
    });
  }

  test('jpeg: across a slow link a photo-like picture comes as JPEG, decoded in the page; PSNR ≥ 30 dB', async (tc) => {
    // spice-server's start-up net test measures the link the page is behind (the console proxy relays its pings):
    // under 10 Mbit/s it sends photo-like pictures as JPEG. A second page behind a shaped link takes the console over.
    const link = await ShapedRelay.start(Number(new URL(t.url).port), { bitsPerSecond: 5e6, rttMs: 20 });
    const slow = await page.context().newPage();
    slow.on('pageerror', (e) => pageErrors.push(e.message));
    try {
      const open = async () => {
        await slow.goto(`http://127.0.0.1:${link.port}/vms/${VM}/console`);
        await slow.waitForSelector('#console-status[data-status=connected]', { timeout: 30_000 });
      };
      await open();
      const images = (): Promise<Record<string, number>> => slow.evaluate(() => window.orielConsole.imageStats);
      // Photo-like across the whole width (the loop's pictures are black right of them: not photo-like enough for
      // spice-server's graduality test): one of them side by side, as often as fits.
      const wide = Buffer.alloc(fbWidth * H * 4);
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < fbWidth; x += W) {
          pictures[2]!.copy(wide, (y * fbWidth + x) * 4, y * W * 4, (y * W + Math.min(W, fbWidth - x)) * 4);
        }
      }
      await upload('wide', wide);
      // Drawn, and drawn again if nothing came meanwhile: now and then the slow page decoded no image at all from
      // the first draw; the stats in the message are for finding out why.
      const draw = async (ms: number) => {
        const before = (await images()).jpeg ?? 0;
        await exec('cat /tmp/wide > /dev/fb0');
        return until('a JPEG image', async () => {
          const s = await images();
          return (s.jpeg ?? 0) > before && s;
        }, ms, 200);
      };
      const twice = () => draw(7_500).catch(() => draw(10_000));
      const decoded = await twice().catch(async (e: Error) => {
        // spice-server decides once, from its net test at the link, whether the link is slow, and takes a test whose
        // figures make no sense (a busy machine) for a fast link. Seen once in CI: every picture came as QUIC. Linked
        // again, once: the client must decode JPEG when it comes.
        tc.diagnostic(`no JPEG at the first link (${e.message}: images ${JSON.stringify(await images())}); again`);
        await open();
        return twice();
      }).catch(async (e: Error) => {
        const v = await slow.evaluate(() => window.orielConsole.videoStats);
        assert.fail(`${e.message}: images ${JSON.stringify(await images())}, video ${JSON.stringify(v)}`);
      });
      let db = 0;
      for (let i = 0; i < 20 && db < 30; i++) {
        const c = await canvasPixels(slow);
        db = psnr(wide, c.data, c.width, 4, fbWidth, H);
        if (db < 30) await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(db >= 30, `canvas PSNR ${db.toFixed(1)} dB against the picture`);
      tc.diagnostic(`images decoded ${JSON.stringify(decoded)}, PSNR ${db.toFixed(1)} dB, ` +
        `${(link.bytesDown / 1024).toFixed(0)} KiB down the link`);
      assert.deepEqual(pageErrors, []);
    } finally {
      await slow.close();
      await link.close();
    }
  });
});
