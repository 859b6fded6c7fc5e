// Oriel's tiny guest (src/vm/images/tiny.ts) under a short-lived QEMU for the SPICE tests: the
// display (-vga std: bochs-drm, -vga qxl: the qxl KMS driver, both with /dev/fb0 fbdev emulation),
// the command shell on the second serial port, and pictures the tests draw into /dev/fb0.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { GuestShell } from '../../../src/vm/guest-shell.ts';
import { ensureTinyImage } from '../../helpers/images.ts';
import { startQemu, type QemuInstance, type QemuOptions } from './qemu.ts';

export interface TinyGuest {
  q: QemuInstance;
  shell: GuestShell;
  /** Framebuffer size in pixels (32 bpp). */
  width: number;
  height: number;
  /** Stores BGRX rows (w × any height) as /tmp/<name> in the guest (the serial line is slow: upload once). */
  upload(name: string, bgrx: Buffer): Promise<void>;
  /** Copies /tmp/<name> to /dev/fb0 from offset 0 (see guest.test.ts) and waits for the write. */
  show(name: string): Promise<void>;
  /** Runs a shell script in the guest; rejects on a non-zero exit. E.g. noise without the slow serial
   * line: `head -c N /dev/urandom > /dev/fb0`. */
  run(script: string, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export async function startTinyGuest(opts: QemuOptions = {}): Promise<TinyGuest> {
  const manifest = await ensureTinyImage();
  const dir = mkdtempSync(join(tmpdir(), 'ost-'));
  const serialLog = join(dir, 'serial.log');
  const shellSock = join(dir, 'sh.sock');
  const q = await startQemu({
    memoryMb: 256,
    ...opts,
    extraArgs: [
      '-kernel', manifest.kernel!, '-initrd', manifest.initrd!, '-append', manifest.append!,
      '-chardev', `file,id=s0,path=${serialLog}`, '-serial', 'chardev:s0',
      '-chardev', `socket,id=s1,path=${shellSock},server=on,wait=off`, '-serial', 'chardev:s1',
      ...(opts.extraArgs ?? []),
    ],
  });
  const shell = new GuestShell(shellSock);
  const stop = async (): Promise<void> => {
    shell.close();
    await q.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 60_000;
    while (!readFileSync(serialLog, 'utf8').includes(manifest.readyMarker!)) {
      if (Date.now() > deadline) throw new Error('tiny guest did not get ready within 60 s');
      await sleep(100);
    }
    await shell.connect();
    const run = async (script: string, timeoutMs = 60_000): Promise<string> => {
      const r = await shell.execScript(script, { timeoutMs });
      if (r.exitCode !== 0) throw new Error(`guest script failed (${r.exitCode}): ${script}\n${r.stderr}`);
      return r.stdout;
    };
    const [width, height, bpp] = (
      await run('cat /sys/class/graphics/fb0/virtual_size /sys/class/graphics/fb0/bits_per_pixel')
    )
      .split(/[,\n]/)
      .map(Number) as [number, number, number];
    if (bpp !== 32) throw new Error(`fb0 has ${bpp} bpp`);
    await run('echo 0 > /sys/class/graphics/fbcon/cursor_blink');
    const upload = async (name: string, bgrx: Buffer): Promise<void> => {
      const r = await shell.execScript(`base64 -d | gunzip > /tmp/${name}`, {
        input: gzipSync(bgrx, { level: 9 }).toString('base64'),
        timeoutMs: 120_000,
      });
      if (r.exitCode !== 0) throw new Error(`upload failed: ${r.stderr}`);
    };
    const show = async (name: string): Promise<void> => {
      await run(`cat /tmp/${name} > /dev/fb0`);
    };
    return { q, shell, width, height, upload, show, run, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** B = x, G = y, R = x + y, scaled to 0..255: smooth, "high graduality" for the server (QUIC/JPEG). */
export function gradient(w: number, h: number, phase = 0): Buffer {
  const buf = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 4;
      buf[o] = (Math.floor((x * 255) / (w - 1)) + phase) & 255;
      buf[o + 1] = Math.floor((y * 255) / (h - 1));
      buf[o + 2] = Math.floor(((x + y) * 255) / (w + h - 2));
    }
  }
  return buf;
}

/**
 * Soft shapes and shading, quantized to steps of 2 so that gzip keeps the serial transfer short:
 * small neighbour differences, what the server's graduality test calls photo-like.
 */
export function photo(w: number, h: number, seed = 1): Buffer {
  const buf = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const d = Math.hypot(x - w * 0.4, y - h * 0.5) / (0.5 * Math.min(w, h));
      const o = (y * w + x) * 4;
      buf[o] = clamp(200 - 120 * d + 30 * Math.sin((x + seed * 40) / 37)) & ~1;
      buf[o + 1] = clamp(90 + 80 * Math.cos(y / 53 + d)) & ~1;
      buf[o + 2] = clamp(60 + 150 * Math.exp(-d * d)) & ~1;
    }
  }
  return buf;
}

/** Black "text": rows of glyph-like blocks of 1-px strokes on white, repeated words (LZ/GLZ territory). */
export function textLike(w: number, h: number, seed = 7): Buffer {
  const buf = Buffer.alloc(w * h * 4, 255);
  let s = seed;
  for (let line = 0; line * 16 + 14 < h; line++) {
    for (let col = 0; col * 8 + 8 < w; col++) {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      if ((s >> 16) % 6 === 0) continue; // a space
      const glyph = (s >> 8) & 0xffff;
      for (let gy = 0; gy < 12; gy++) {
        for (let gx = 0; gx < 6; gx++) {
          if (!((glyph >> ((gy * 3 + gx) % 16)) & 1)) continue;
          const o = ((line * 16 + 2 + gy) * w + col * 8 + gx) * 4;
          buf[o] = buf[o + 1] = buf[o + 2] = 20;
        }
      }
    }
  }
  return buf;
}

function clamp(v: number): number {
  return Math.max(0, Math.min(255, Math.round(v)));
}
