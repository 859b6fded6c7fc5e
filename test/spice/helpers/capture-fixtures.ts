// Captures real display-channel traffic from QEMU for the replay tests and the decode benchmark:
//   node --import tsx test/spice/helpers/capture-fixtures.ts
// For each image-compression mode it boots SeaBIOS paused, connects over TCP (libspice-server only
// compresses for TCP clients), resumes the guest, waits until the client framebuffer equals QMP
// screendump, and writes test/fixtures/spice/<mode>/{display.bin, expected.png, meta.json}.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodePng, nodeEncryptTicket, primarySurface, tcpConnector } from '../../../src/spice-node/index.ts';
import { ChannelType, SpiceSession, type DisplayChannel } from '../../../src/spice/index.ts';
import { waitForMatch } from './compare.ts';
import { startQemu } from './qemu.ts';
import { Recorder } from './record.ts';

const OUT = join(import.meta.dirname, '../../fixtures/spice');

for (const mode of ['glz', 'quic', 'lz']) {
  const q = await startQemu({ imageCompression: mode, paused: true, tcp: true });
  try {
    const rec = new Recorder();
    const session = await SpiceSession.connect({
      connect: rec.wrap(tcpConnector('127.0.0.1', q.spicePort)),
      encryptTicket: nodeEncryptTicket,
    });
    const display = await session.whenChannel<DisplayChannel>(ChannelType.DISPLAY);
    await sleep(300);
    await q.qmp.execute('cont');
    await sleep(3000);
    const cmp = await waitForMatch(session, q);
    if (!cmp.equal) throw new Error(`${mode}: framebuffer differs from screendump: ${cmp.detail}`);
    const s = primarySurface(session)!;
    const dir = join(OUT, mode);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'display.bin'), rec.afterLink('display:0'));
    writeFileSync(join(dir, 'expected.png'), encodePng({ width: s.width, height: s.height, data: s.data }));
    const meta = {
      scenario: `SeaBIOS boot screen, QEMU 7.2 -vga std, -spice image-compression=${mode}, TCP`,
      decoded: display.displayStats.decoded,
    };
    writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
    console.log(mode, meta.decoded);
    session.close();
  } finally {
    await q.stop();
  }
}
