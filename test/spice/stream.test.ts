// Video streams against real QEMU 7.2 (-spice streaming-video=all): the tiny guest plays a loop of
// pictures into /dev/fb0; the server detects the video-like region (server/video-stream.cpp), sends
// STREAM_CREATE and MJPEG frames (this client announces MULTI_CODEC + CODEC_MJPEG and prefers MJPEG),
// answers the stream reports it asks for, and when the loop stops the client picture converges to
// the guest's (PSNR against screendump).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { openSpiceSession } from '../../src/spice-node/index.ts';
import { ChannelType, type DisplayChannel } from '../../src/spice/index.ts';
import { waitForPsnr } from './helpers/compare.ts';
import { photo, startTinyGuest } from './helpers/tiny-guest.ts';

const W = 320;
const H = 240;
const FRAMES = 6;

test('streaming-video=all: a moving picture arrives as an MJPEG stream; the picture converges (PSNR ≥ 30 dB)', async (t) => {
  const g = await startTinyGuest({
    tcp: true,
    vga: 'none',
    extraArgs: ['-device', `VGA,xres=${W},yres=${H}`],
    spiceOptions: ['streaming-video=all'],
  });
  try {
    for (let i = 0; i < FRAMES; i++) await g.upload(`f${i}`, photo(W, H, i + 1));
    const session = await openSpiceSession({ host: '127.0.0.1', port: g.q.spicePort });
    const display = await session.whenChannel<DisplayChannel>(ChannelType.DISPLAY);
    const stats = display.displayStats;
    await sleep(300);
    // ~15 frames/s in the background, until /tmp/play goes away.
    await g.run(
      `touch /tmp/play; (i=0; while [ -e /tmp/play ]; do cat /tmp/f$((i % ${FRAMES})) > /dev/fb0; i=$((i + 1)); usleep 60000; done) >/dev/null 2>&1 &`,
    );
    const deadline = Date.now() + 90_000;
    // Streams come and go with the load (the server ends a stream whose updates slow down), and a report is due only
    // after the server's window of frames or its timeout within one stream: play until one was sent as well.
    while ((stats.decoded.mjpeg ?? 0) < 30 || stats.streams.reports === 0) {
      assert.ok(Date.now() < deadline, `MJPEG frames and a report: ${JSON.stringify(stats)}`);
      await sleep(200);
    }
    assert.ok(stats.streams.created >= 1);
    await g.run('rm /tmp/play');
    const psnr = await waitForPsnr(session, g.q, 30, 10_000);
    assert.ok(psnr >= 30, `PSNR ${psnr.toFixed(1)} dB after the loop stopped`);
    // Idle streams time out on the server (RED_STREAM_TIMEOUT, 1 s) and are destroyed.
    for (let i = 0; i < 50 && display.streams.streams.size > 0; i++) await sleep(100);
    assert.equal(display.streams.streams.size, 0, 'every stream was destroyed');
    assert.ok(stats.streams.reports > 0, 'stream reports were sent when the server activated them');
    t.diagnostic(
      `streams ${JSON.stringify(stats.streams)}, decoded ${JSON.stringify(stats.decoded)}, PSNR ${psnr.toFixed(1)} dB`,
    );
    session.close();
  } finally {
    await g.stop();
  }
});
