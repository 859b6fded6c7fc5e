// Richer content than SeaBIOS text: Oriel's tiny guest (src/vm/images/tiny.ts) draws a full-screen
// gradient and a band of noise into /dev/fb0 (bochs-drm, -vga std). With QEMU's default
// image-compression=auto_glz the server picks QUIC for the photo-like gradient and GLZ for the
// rest; the client framebuffer must equal QMP screendump pixel for pixel after each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { GuestShell } from '../../src/vm/guest-shell.ts';
import { openSpiceSession } from '../../src/spice-node/index.ts';
import type { DisplayStats } from '../../src/spice/index.ts';
import { ensureTinyImage } from '../helpers/images.ts';
import { waitForMatch } from './helpers/compare.ts';
import { screendump, startQemu } from './helpers/qemu.ts';

function total(stats: DisplayStats): number {
  return Object.values(stats.decoded).reduce((a, b) => a + b, 0);
}

/** B = x, G = y, R = x + y, scaled to 0..255: smooth, so "high graduality" for the server. */
function gradient(w: number, h: number): Buffer {
  const buf = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 4;
      buf[o] = Math.floor((x * 255) / (w - 1));
      buf[o + 1] = Math.floor((y * 255) / (h - 1));
      buf[o + 2] = Math.floor(((x + y) * 255) / (w + h - 2));
    }
  }
  return buf;
}

test('tiny guest: gradient (QUIC) and noise drawn into /dev/fb0 arrive pixel-exact', async (t) => {
  const manifest = await ensureTinyImage(); // a failed build fails the test
  const dir = mkdtempSync(join(tmpdir(), 'osg-'));
  const serialLog = join(dir, 'serial.log');
  const shellSock = join(dir, 'sh.sock');
  const q = await startQemu({
    tcp: true,
    memoryMb: 256,
    extraArgs: [
      '-kernel', manifest.kernel!, '-initrd', manifest.initrd!, '-append', manifest.append!,
      '-chardev', `file,id=s0,path=${serialLog}`, '-serial', 'chardev:s0',
      '-chardev', `socket,id=s1,path=${shellSock},server=on,wait=off`, '-serial', 'chardev:s1',
    ],
  });
  const shell = new GuestShell(shellSock);
  try {
    const session = await openSpiceSession({ host: '127.0.0.1', port: q.spicePort });
    const deadline = Date.now() + 60_000;
    while (!readFileSync(serialLog, 'utf8').includes(manifest.readyMarker!)) {
      assert.ok(Date.now() < deadline, 'guest ready');
      await sleep(200);
    }
    await shell.connect();
    const size = await shell.execScript(
      'cat /sys/class/graphics/fb0/virtual_size /sys/class/graphics/fb0/bits_per_pixel',
    );
    const [w, h, bpp] = size.stdout.split(/[,\n]/).map(Number) as [number, number, number];
    assert.equal(bpp, 32);
    const display = session.display!;

    const payload = gzipSync(gradient(w, h), { level: 9 }).toString('base64');
    const wrote = await shell.execScript(
      'echo 0 > /sys/class/graphics/fbcon/cursor_blink; base64 -d | gunzip > /dev/fb0',
      { input: payload, timeoutMs: 120_000 },
    );
    assert.equal(wrote.exitCode, 0, wrote.stderr);
    let cmp = await waitForMatch(session, q);
    assert.ok(cmp.equal, `gradient: ${cmp.differing} pixels differ, ${cmp.detail}`);
    const shot = await screendump(q);
    assert.deepEqual([...shot.rgb.subarray(0, 3)], [0, 0, 0]);
    const last = (w * h - 1) * 3;
    assert.deepEqual([...shot.rgb.subarray(last, last + 3)], [255, 255, 255], 'the gradient is what the guest shows');
    assert.ok(
      (display.displayStats.decoded.quic ?? 0) > 0,
      `QUIC chosen for the gradient: ${JSON.stringify(display.displayStats.decoded)}`,
    );

    const before = total(display.displayStats);
    // From offset 0: the guest kernel (6.1 fbdev emulation over bochs-drm) did not flush writes made at
    // an offset (dd seek=…) to the device, so QEMU never saw them.
    const noise = await shell.execScript(`head -c ${w * 4 * Math.floor(h / 4)} /dev/urandom > /dev/fb0`);
    assert.equal(noise.exitCode, 0, noise.stderr);
    for (let i = 0; i < 40 && total(display.displayStats) === before; i++) await sleep(100);
    assert.ok(total(display.displayStats) > before, 'the noise arrived as new images');
    await sleep(300);
    cmp = await waitForMatch(session, q);
    assert.ok(cmp.equal, `noise: ${cmp.differing} pixels differ, ${cmp.detail}`);
    t.diagnostic(`decoded ${JSON.stringify(display.displayStats.decoded)} (${before} before the noise)`);
    session.close();
  } finally {
    shell.close();
    await q.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
