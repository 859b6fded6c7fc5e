// Captures the same guest activity once per codec for the replay tests and bench/spice-decode.ts:
//   node --import tsx test/spice/helpers/capture-guest-fixtures.ts [codec …]
// One tiny guest (-device VGA at 320×240 so that the fixtures stay small; streaming-video=all),
// pictures uploaded once. Per codec: black screen, connect over TCP (through the slow-link relay for
// JPEG + ZLIB_GLZ), then the guest shows gradient → photo → text → noise band, each waited for.
// Writes test/fixtures/spice/guest-<codec>/{display.bin, expected.png, meta.json}; expected.png is
// QMP screendump at the end (text + noise band: lossless content, so every codec must match it
// exactly). OFF keeps only meta.json (its wire size; 1.3 MB of raw bitmaps is no fixture). MJPEG
// plays four photo-like pictures in a loop (~15 frames/s, until 40 stream frames) instead and keeps
// only the stream messages (no expected.png: the final picture mixes stream frames and upgrades).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodePng, nodeEncryptTicket, tcpConnector } from '../../../src/spice-node/index.ts';
import { ChannelType, ImageCompression, SpiceSession, type DisplayChannel } from '../../../src/spice/index.ts';
import { waitForMatch, waitForPsnr } from './compare.ts';
import { screendump } from './qemu.ts';
import { concat, Recorder } from './record.ts';
import { SpiceRelay } from './relay.ts';
import { gradient, photo, startTinyGuest, textLike } from './tiny-guest.ts';

const OUT = join(import.meta.dirname, '../../fixtures/spice');
const W = 320;
const H = 240;

const CODECS: { name: string; preferred?: number; slowLink?: boolean; metaOnly?: boolean; video?: boolean }[] = [
  { name: 'lz', preferred: ImageCompression.LZ },
  { name: 'glz', preferred: ImageCompression.GLZ },
  { name: 'quic', preferred: ImageCompression.QUIC },
  { name: 'lz4', preferred: ImageCompression.LZ4 },
  { name: 'jpeg-zlib', slowLink: true }, // auto_glz on a slow link: JPEG for photo-like, zlib-GLZ for the rest
  { name: 'off', preferred: ImageCompression.OFF, metaOnly: true },
  { name: 'mjpeg', video: true },
];

/** The messages of a recorded display channel that a stream replay needs: SURFACE_CREATE and the stream ones. */
function streamOnly(bytes: Uint8Array): Uint8Array {
  const keep = new Set([314, 122, 123, 124, 125, 126, 316, 319]);
  const out: Uint8Array[] = [];
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let o = 0; o + 6 <= bytes.length; ) {
    const end = o + 6 + v.getUint32(o + 2, true);
    if (keep.has(v.getUint16(o, true))) out.push(bytes.subarray(o, end));
    o = end;
  }
  return concat(out);
}

const g = await startTinyGuest({
  tcp: true,
  vga: 'none',
  extraArgs: ['-device', `VGA,xres=${W},yres=${H}`],
  spiceOptions: ['streaming-video=all'],
});
try {
  if (g.width !== W || g.height !== H) throw new Error(`framebuffer is ${g.width}×${g.height}`);
  await g.upload('gradient', gradient(W, H));
  await g.upload('photo', photo(W, H));
  await g.upload('text', textLike(W, H));
  await g.run(`head -c ${W * 4 * 48} /dev/urandom > /tmp/noise`); // one band, the same for every codec
  const only = process.argv.slice(2);
  for (const c of CODECS.filter((x) => only.length === 0 || only.includes(x.name))) {
    await g.run(`head -c ${W * H * 4} /dev/zero > /dev/fb0`);
    await sleep(300);
    const relay = c.slowLink ? await SpiceRelay.start({ upstreamPort: g.q.spicePort, mainRate: 300_000 }) : undefined;
    const rec = new Recorder();
    const session = await SpiceSession.connect({
      connect: rec.wrap(tcpConnector('127.0.0.1', relay?.port ?? g.q.spicePort)),
      encryptTicket: nodeEncryptTicket,
      preferredCompression: c.preferred,
    });
    const display = await session.whenChannel<DisplayChannel>(ChannelType.DISPLAY);
    await sleep(700);
    if (c.video) {
      for (let i = 0; i < 4; i++) await g.upload(`f${i}`, photo(W, H, i + 2));
      await g.run(
        `touch /tmp/play; (while [ -e /tmp/play ]; do for i in 0 1 2 3; do cat /tmp/f$i > /dev/fb0; usleep 60000; done; done) >/dev/null 2>&1 &`,
      );
      for (let i = 0; i < 100 && (display.displayStats.decoded.mjpeg ?? 0) < 40; i++) await sleep(100);
      await g.run('rm /tmp/play');
      const psnr = await waitForPsnr(session, g.q, 30);
      if (psnr < 30) throw new Error(`${c.name}: PSNR ${psnr.toFixed(1)} dB`);
      if (!display.displayStats.decoded.mjpeg)
        throw new Error(`${c.name}: no stream: ${JSON.stringify(display.displayStats.decoded)}`);
    } else {
      for (const picture of ['gradient', 'photo', 'text', 'noise']) {
        await g.show(picture);
        await sleep(700);
      }
      const cmp = await waitForMatch(session, g.q);
      if (!cmp.equal) throw new Error(`${c.name}: ${cmp.differing} pixels differ from screendump, ${cmp.detail}`);
    }
    const dir = join(OUT, `guest-${c.name}`);
    mkdirSync(dir, { recursive: true });
    const bytes = rec.afterLink('display:0');
    if (!c.metaOnly) writeFileSync(join(dir, 'display.bin'), c.video ? streamOnly(bytes) : bytes);
    const shot = await screendump(g.q);
    const rgba = new Uint8Array(W * H * 4);
    for (let i = 0; i < W * H; i++) rgba.set(shot.rgb.subarray(i * 3, i * 3 + 3), i * 4);
    if (!c.metaOnly && !c.video)
      writeFileSync(join(dir, 'expected.png'), encodePng({ width: W, height: H, data: rgba }));
    const meta = {
      scenario: `tiny guest, QEMU 7.2 -device VGA ${W}×${H}, -spice streaming-video=all, TCP${c.slowLink ? ' through a relay throttling the main channel to 300 kB/s (low-bandwidth net test)' : c.preferred ? `, client PREFERRED_COMPRESSION ${c.name}` : ''}: black, then ${c.video ? 'four photo-like pictures in a loop at ~15 frames/s until the client decoded 40 MJPEG frames' : 'gradient, photo, text, noise band (48 rows)'} written to /dev/fb0`,
      wireBytes: bytes.length,
      decoded: display.displayStats.decoded,
      ...(c.video
        ? {
            streamOnly:
              'display.bin keeps SURFACE_CREATE and the stream messages (122-126, 316, 319) of the session: the images before the server detected the video would make it megabytes',
            streamBytes: streamOnly(bytes).length,
          }
        : {}),
    };
    writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
    console.log(c.name, bytes.length, JSON.stringify(meta.decoded));
    session.close();
    await relay?.close();
    await sleep(300);
  }
} finally {
  await g.stop();
}
