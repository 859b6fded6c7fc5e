// Decode throughput of the SPICE core on recorded QEMU display traffic (test/fixtures/spice/):
//   node --import tsx bench/spice-decode.ts [iterations]
// 1. Per codec, the same tiny-guest activity (test/spice/helpers/capture-guest-fixtures.ts: black,
//    gradient, photo, text, noise band at 320×240): bytes the display channel carried, and a full
//    replay (framing, image parsing, decoding, drawing into an RgbaSurface) in MB/s of decoded output
//    pixels (4 bytes each) and of wire bytes.
// 2. The JPEG decoder alone on the JPEG images and MJPEG frames found in those recordings.
// 3. The SeaBIOS boot-screen recordings of the first slice (lz, glz, quic).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as jpeg from '../src/spice/codecs/jpeg.ts';
import { replayDisplay } from '../test/spice/helpers/replay.ts';

const iterations = Number(process.argv[2] ?? 20);
const fixtures = join(import.meta.dirname, '../test/fixtures/spice');

interface Meta { wireBytes?: number; decoded: Record<string, number>; streamBytes?: number }

const mb = (bytes: number, s: number) => (bytes / s / 1e6).toFixed(1).padStart(7);

async function replayBench(name: string): Promise<void> {
  const dir = join(fixtures, name);
  const meta = existsSync(join(dir, 'meta.json'))
    ? (JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as Meta)
    : undefined;
  const wire = meta?.wireBytes !== undefined ? String(meta.wireBytes).padStart(9) : '        -';
  if (!existsSync(join(dir, 'display.bin'))) {
    console.log(
      `${name.padEnd(16)} ${wire}  (no recording kept)                                   ${JSON.stringify(meta?.decoded ?? {})}`,
    );
    return;
  }
  const bytes = new Uint8Array(readFileSync(join(dir, 'display.bin')));
  const warm = await replayDisplay(bytes, 1 << 20);
  if (warm.error) throw warm.error;
  const pixels = Object.values(warm.display.displayStats.decodedPixels).reduce((a, b) => a + b, 0);
  const start = performance.now();
  for (let i = 0; i < iterations; i++) await replayDisplay(bytes, 1 << 20);
  const s = (performance.now() - start) / 1000 / iterations;
  console.log(
    `${name.padEnd(16)} ${wire}  ${String(bytes.length).padStart(9)}  ${(s * 1000).toFixed(1).padStart(7)} ms  ${mb(pixels * 4, s)} MB/s out  ${mb(bytes.length, s)} MB/s wire  ${JSON.stringify(warm.display.displayStats.decoded)}`,
  );
}

/** Real JPEGs inside a recording: BinaryData {size u32, FF D8 … FF D9}. */
function jpegsIn(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 4; i + 3 < bytes.length; i++) {
    if (bytes[i] !== 0xff || bytes[i + 1] !== 0xd8 || bytes[i + 2] !== 0xff) continue;
    const size = v.getUint32(i - 4, true);
    if (size >= 4 && i + size <= bytes.length && bytes[i + size - 2] === 0xff && bytes[i + size - 1] === 0xd9)
      out.push(bytes.subarray(i, i + size));
  }
  return out;
}

function jpegBench(name: string): void {
  const images = jpegsIn(new Uint8Array(readFileSync(join(fixtures, name, 'display.bin'))));
  const tables = new jpeg.JpegTables();
  let pixels = 0;
  let input = 0;
  for (const img of images) {
    const d = jpeg.decode(img, { maxPixels: 1 << 24, tables });
    pixels += d.width * d.height;
    input += img.length;
  }
  const start = performance.now();
  for (let i = 0; i < iterations; i++) for (const img of images) jpeg.decode(img, { maxPixels: 1 << 24, tables });
  const s = (performance.now() - start) / 1000 / iterations;
  console.log(
    `jpeg.decode on ${name}: ${images.length} pictures, ${(pixels / images.length).toFixed(0)} px average, ${(input / images.length).toFixed(0)} B average  ${mb(pixels * 4, s)} MB/s out  ${mb(input, s)} MB/s in`,
  );
}

console.log(`${iterations} iterations each\n`);
console.log('same guest activity  wire bytes  recorded     replay   decoded output    wire             images');
for (const name of ['guest-off', 'guest-lz', 'guest-glz', 'guest-quic', 'guest-lz4', 'guest-jpeg-zlib', 'guest-mjpeg'])
  await replayBench(name);
console.log('');
jpegBench('guest-jpeg-zlib');
jpegBench('guest-mjpeg');
console.log('\nSeaBIOS boot screen (720×400)');
for (const name of ['lz', 'glz', 'quic']) await replayBench(name);
