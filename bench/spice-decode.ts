// Decode throughput of the SPICE core on recorded QEMU display traffic (test/fixtures/spice/):
//   node --import tsx bench/spice-decode.ts [iterations]
// Prints, per codec fixture, the time of one full replay (framing, image parsing, decoding, drawing
// into a new 720×400 RgbaSurface) and the wire bytes consumed per second.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { replayDisplay } from '../test/spice/helpers/replay.ts';

const iterations = Number(process.argv[2] ?? 20);
const fixtures = join(import.meta.dirname, '../test/fixtures/spice');

for (const mode of ['lz', 'glz', 'quic']) {
  const bytes = new Uint8Array(readFileSync(join(fixtures, mode, 'display.bin')));
  const warm = await replayDisplay(bytes, 1 << 20);
  if (warm.error) throw warm.error;
  const start = performance.now();
  for (let i = 0; i < iterations; i++) await replayDisplay(bytes, 1 << 20);
  const s = (performance.now() - start) / 1000;
  const mb = (bytes.length * iterations) / s / 1e6;
  console.log(`${mode.padEnd(5)} ${(bytes.length / 1024).toFixed(0).padStart(5)} KiB  ${((s / iterations) * 1000).toFixed(1).padStart(6)} ms/replay  ${mb.toFixed(1).padStart(6)} MB/s wire  ${JSON.stringify(warm.display.displayStats.decoded)}`);
}
