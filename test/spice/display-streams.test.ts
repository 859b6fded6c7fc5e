// Video stream messages over a fake transport (the real display channel, surfaces and JPEG decoder):
// frames drawn into dest (flipped unless TOP_DOWN, scaled for STREAM_DATA_SIZED), clipped by
// STREAM_CLIP, reports per the server's ACTIVATE_REPORT window, unsupported codecs reported invalid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as jpeg from '../../src/spice/codecs/jpeg.ts';
import { capsFromBits } from '../../src/spice/caps.ts';
import { DisplayCap, DisplayMsg, VideoCodec } from '../../src/spice/proto/constants.ts';
import { Reader } from '../../src/spice/proto/reader.ts';
import { Writer } from '../../src/spice/proto/writer.ts';
import type { RgbaSurface } from '../../src/spice/index.ts';
import { miniMessage } from './helpers/fake.ts';
import { replayDisplay } from './helpers/replay.ts';

const FRAME = new Uint8Array(readFileSync(join(import.meta.dirname, '../fixtures/spice/jpeg-files/444.jpg')));
const decoded = jpeg.decode(FRAME, { maxPixels: 1 << 20 }); // 67×45
const FW = decoded.width;
const FH = decoded.height;

const rect = (w: Writer, l: number, t: number, r: number, b: number) => w.i32(t).i32(l).i32(b).i32(r);

function surfaceCreate(w: number, h: number): Uint8Array {
  return miniMessage(DisplayMsg.SURFACE_CREATE, new Writer().u32(0).u32(w).u32(h).u32(32).u32(1).finish());
}

function streamCreate(id: number, codec: number, flags: number, dest: [number, number, number, number]): Uint8Array {
  const w = new Writer().u32(0).u32(id).u8(flags).u8(codec).u64(0).u32(FW).u32(FH).u32(FW).u32(FH);
  rect(w, ...dest).u8(0);
  return miniMessage(DisplayMsg.STREAM_CREATE, w.finish());
}

function pixel(s: RgbaSurface, x: number, y: number): number[] {
  return [...s.data.subarray((y * s.width + x) * 4, (y * s.width + x) * 4 + 3)];
}

function framePixel(x: number, y: number): number[] {
  return [...decoded.data.subarray((y * FW + x) * 4, (y * FW + x) * 4 + 3)];
}

test('STREAM_DATA draws the frame bottom-up into dest; DATA_SIZED scales; CLIP limits; reports follow the window', async () => {
  const msgs = [
    surfaceCreate(200, 100),
    streamCreate(0, VideoCodec.MJPEG, 0, [10, 5, 10 + FW, 5 + FH]),
    miniMessage(DisplayMsg.STREAM_ACTIVATE_REPORT, new Writer().u32(0).u32(77).u32(2).u32(60_000).finish()),
    miniMessage(DisplayMsg.STREAM_DATA, new Writer().u32(0).u32(1000).u32(FRAME.length).bytes(FRAME).finish()),
  ];
  let r = await replayDisplay(Uint8Array.from(msgs.flatMap((m) => [...m])));
  assert.equal(r.error, undefined);
  let s = r.display.primary!.surface as RgbaSurface;
  // Not TOP_DOWN: frame row 0 is the bottom row of dest.
  assert.deepEqual(pixel(s, 10, 5 + FH - 1), framePixel(0, 0));
  assert.deepEqual(pixel(s, 10 + FW - 1, 5), framePixel(FW - 1, FH - 1));
  assert.deepEqual(pixel(s, 9, 5), [0, 0, 0]);
  assert.equal(r.display.displayStats.decoded.mjpeg, 1);

  const sized = new Writer().u32(0).u32(1040).u32(FW).u32(FH);
  rect(sized, 100, 0, 100 + 2 * FW, 2 * FH).u32(FRAME.length).bytes(FRAME);
  const clip = new Writer().u32(0).u8(1).u32(1);
  rect(clip, 100, 0, 150, 50);
  msgs.push(
    miniMessage(DisplayMsg.STREAM_CLIP, clip.finish()),
    miniMessage(DisplayMsg.STREAM_DATA_SIZED, sized.finish()),
    miniMessage(DisplayMsg.STREAM_DESTROY, new Writer().u32(0).finish()),
  );
  r = await replayDisplay(Uint8Array.from(msgs.flatMap((m) => [...m])));
  assert.equal(r.error, undefined);
  s = r.display.primary!.surface as RgbaSurface;
  assert.deepEqual(pixel(s, 100, 0), framePixel(0, FH - 1), 'scaled ×2, flipped');
  assert.deepEqual(pixel(s, 149, 49), framePixel(24, FH - 1 - 24));
  assert.deepEqual(pixel(s, 150, 10), [0, 0, 0], 'outside the clip');
  assert.deepEqual(r.display.displayStats.streams,
    { created: 1, destroyed: 1, frames: 2, reports: 1, dropped: 0, failed: 0 });
  const report = r.written.map((b) => new Reader(b)).find((b) => b.u16() === 102)!;
  report.u32(); // size
  assert.deepEqual(
    [report.u32(), report.u32(), report.u32(), report.u32(), report.u32(), report.u32()],
    [0, 77, 1000, 1040, 2, 0],
    'id, unique id, start/end mm time, frames, drops',
  );
});

test('a stream of an unsupported codec is reported invalid (num_drops 0xffffffff), its data ignored', async () => {
  const bytes = [
    surfaceCreate(100, 100),
    streamCreate(3, VideoCodec.VP8, 1, [0, 0, FW, FH]),
    miniMessage(DisplayMsg.STREAM_DATA, new Writer().u32(3).u32(5).u32(3).bytes(Uint8Array.of(1, 2, 3)).finish()),
  ].flatMap((m) => [...m]);
  const r = await replayDisplay(Uint8Array.from(bytes), 4096, 1 << 20, capsFromBits([DisplayCap.STREAM_REPORT]));
  assert.equal(r.error, undefined);
  const reports = r.written.filter((b) => (b[0]! | (b[1]! << 8)) === 102).map((b) => new Reader(b.subarray(6)));
  assert.equal(reports.length, 2, 'at STREAM_CREATE and at the unknown stream\'s data');
  for (const rep of reports) {
    assert.equal(rep.u32(), 3);
    rep.pos = 20;
    assert.equal(rep.u32(), 0xffffffff);
  }
  assert.equal(r.display.displayStats.decoded.vp8, undefined);
});
