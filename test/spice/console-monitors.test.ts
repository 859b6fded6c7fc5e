// Several monitors on one display channel (src/spice/console/monitors.ts): the side-by-side layout every host asks
// for, rounded as the agent sends it; comparing layouts; a head's region cut from the surface's picture; and the
// display channel keeping the heads of the last MONITORS_CONFIG.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeHeads, headImage, headsMatch, MAX_HEADS, sideBySide } from '../../src/spice/console/monitors.ts';
import { DisplayMsg } from '../../src/spice/proto/constants.ts';
import { miniMessage } from './helpers/fake.ts';
import { Body, play, surfaceCreate } from './helpers/draw-msgs.ts';

test('side by side: left to right from 0,0, widths rounded down to a multiple of 8', () => {
  const l = sideBySide([{ width: 1023, height: 700 }, { width: 800, height: 600 }]);
  assert.deepEqual(l, [{ width: 1016, height: 700, x: 0, y: 0 }, { width: 800, height: 600, x: 1016, y: 0 }]);
  assert.equal(describeHeads(l), '1016×700 at 0,0; 800×600 at 1016,0');
  assert.throws(() => sideBySide([]), RangeError);
  const many = Array.from({ length: MAX_HEADS + 1 }, () => ({ width: 640, height: 480 }));
  assert.throws(() => sideBySide(many), RangeError);
});

test('layouts match on count, sizes and places', () => {
  const l = sideBySide([{ width: 640, height: 480 }, { width: 640, height: 480 }]);
  assert.ok(headsMatch(l, l));
  assert.ok(!headsMatch(l.slice(0, 1), l), 'fewer heads');
  assert.ok(!headsMatch([l[0]!, { ...l[1]!, x: 700 }], l), 'another place');
  assert.ok(!headsMatch([l[0]!, { ...l[1]!, height: 400 }], l), 'another size');
});

test("a head's picture is its region of the surface's, clipped to it", () => {
  const width = 6;
  const height = 3;
  const data = new Uint8Array(width * height * 4).map((_, i) => i);
  const img = headImage({ width, height, data }, { x: 4, y: 1, width: 2, height: 2 });
  assert.equal(`${img.width}x${img.height}`, '2x2');
  const px = (x: number, y: number) => [...data.subarray((y * width + x) * 4, (y * width + x) * 4 + 4)];
  assert.deepEqual([...img.data], [...px(4, 1), ...px(5, 1), ...px(4, 2), ...px(5, 2)]);
  const clipped = headImage({ width, height, data }, { x: 4, y: 2, width: 5, height: 5 });
  assert.equal(`${clipped.width}x${clipped.height}`, '2x1');
});

test('the display channel keeps the heads of the last MONITORS_CONFIG', async () => {
  const config = (heads: number[][]) => {
    const b = new Body().u16(heads.length).u16(2);
    for (const [id, w, h, x] of heads) b.u32(id!).u32(0).u32(w!).u32(h!).u32(x!).u32(0).u32(0);
    return miniMessage(DisplayMsg.MONITORS_CONFIG, b.finish());
  };
  const r = await play(surfaceCreate(0, 1824, 768), config([[0, 1024, 768, 0], [1, 800, 600, 1024]]));
  assert.deepEqual(r.display.heads.map((h) => [h.monitorId, h.width, h.height, h.x, h.y]),
    [[0, 1024, 768, 0, 0], [1, 800, 600, 1024, 0]]);
  const back = await play(surfaceCreate(0, 1824, 768), config([[0, 1024, 768, 0], [1, 800, 600, 1024]]),
    config([[0, 1024, 768, 0]]));
  assert.equal(back.display.heads.length, 1);
});
