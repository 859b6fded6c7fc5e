// Codecs a SPICE server only uses on request or on a slow link, against real QEMU 7.2 over TCP
// (libspice-server compresses nothing for unix-socket clients):
// - JPEG and ZLIB_GLZ_RGB: QEMU's defaults jpeg-wan-compression=auto, zlib-glz-wan-compression=auto
//   turn them on when the main channel's startup net test measures < 10 Mbit/s; a relay throttles
//   that channel (helpers/relay.ts). Photo-like pictures then go as JPEG (PSNR ≥ 30 dB against
//   screendump), the rest as GLZ wrapped in zlib (lossless).
// - LZ4: only when the client announces the LZ4 cap *and* asks for it with PREFERRED_COMPRESSION.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { openSpiceSession } from '../../src/spice-node/index.ts';
import { ChannelType, ImageCompression, type DisplayChannel } from '../../src/spice/index.ts';
import { waitForMatch, waitForPsnr } from './helpers/compare.ts';
import { SpiceRelay } from './helpers/relay.ts';
import { gradient, photo, startTinyGuest, textLike } from './helpers/tiny-guest.ts';

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleep(100);
  }
}

test('slow link: photo-like pictures as JPEG (PSNR ≥ 30 dB), text as ZLIB_GLZ (pixel-exact)', async (t) => {
  const g = await startTinyGuest({ tcp: true });
  // 300 kB/s: the 250 KiB net-test ping takes ~0.85 s, i.e. ~2.4 Mbit/s.
  const relay = await SpiceRelay.start({ upstreamPort: g.q.spicePort, mainRate: 300_000 });
  try {
    const half = Math.floor(g.height / 2);
    await g.upload('photo', photo(g.width, half));
    await g.upload('text', textLike(g.width, g.height));
    const session = await openSpiceSession({ host: '127.0.0.1', port: relay.port });
    const display = await session.whenChannel<DisplayChannel>(ChannelType.DISPLAY);
    const decoded = display.displayStats.decoded;
    await sleep(500);

    await g.show('photo');
    await until(() => (decoded.jpeg ?? 0) > 0, `JPEG images (decoded ${JSON.stringify(decoded)})`);
    const psnr = await waitForPsnr(session, g.q, 30);
    assert.ok(psnr >= 30, `PSNR ${psnr.toFixed(1)} dB`);

    await g.show('text');
    await until(() => (decoded.zlib_glz_rgb ?? 0) > 0, `ZLIB_GLZ images (decoded ${JSON.stringify(decoded)})`);
    const cmp = await waitForMatch(session, g.q);
    assert.ok(cmp.equal, `text after zlib-GLZ: ${cmp.differing} pixels differ, ${cmp.detail}`);
    t.diagnostic(
      `PSNR ${psnr.toFixed(1)} dB; decoded ${JSON.stringify(decoded)}; wire bytes by channel type ${JSON.stringify([...relay.bytesDown])}`,
    );
    session.close();
  } finally {
    await relay.close();
    await g.stop();
  }
});

test('LZ4 on request (LZ4 cap + PREFERRED_COMPRESSION): pixel-exact', async (t) => {
  const g = await startTinyGuest({ tcp: true });
  try {
    await g.upload('gradient', gradient(g.width, g.height));
    await g.upload('text', textLike(g.width, g.height));
    const session = await openSpiceSession({
      host: '127.0.0.1',
      port: g.q.spicePort,
      preferredCompression: ImageCompression.LZ4,
    });
    const display = await session.whenChannel<DisplayChannel>(ChannelType.DISPLAY);
    const decoded = display.displayStats.decoded;
    await sleep(300);
    for (const picture of ['gradient', 'text']) {
      const before = decoded.lz4 ?? 0;
      await g.show(picture);
      await until(() => (decoded.lz4 ?? 0) > before, `LZ4 images for ${picture}`);
      const cmp = await waitForMatch(session, g.q);
      assert.ok(cmp.equal, `${picture}: ${cmp.differing} pixels differ, ${cmp.detail}`);
    }
    assert.deepEqual(Object.keys(decoded), ['lz4'], `only LZ4: ${JSON.stringify(decoded)}`);
    t.diagnostic(`decoded ${JSON.stringify(decoded)}`);
    session.close();
  } finally {
    await g.stop();
  }
});
