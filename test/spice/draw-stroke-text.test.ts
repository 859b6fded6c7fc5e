// The GDI drawing commands of the display channel, continued from draw.test.ts (same method: the wire message
// replayed onto a known picture, every pixel compared with a reference written here): strokes, text, surface
// formats, and commands left undrawn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BrushType, DisplayMsg, Ropd, SurfaceFmt } from '../../src/spice/proto/constants.ts';
import { Body, base, msg, play, px, rect, surfaceCreate, surfaceImage, surfaceOf, testPic, type R } from './helpers/draw-msgs.ts';
import { H, W, assertPic, copyMsg, drawable, expectPic, inside, noMask, paint, type Px } from './helpers/draw-expect.ts';

test('DRAW_STROKE: a closed polyline of cosmetic lines (end points excluded)', async () => {
  const pic = testPic(W, H, 83);
  // Path: one segment BEGIN|END|CLOSE through (1,1) (9,1) (9,6) (1,6), in 28.4 fixed point.
  const pts = [[1, 1], [9, 1], [9, 6], [1, 6]];
  const path = (b: Body) => {
    b.u32(1).u8(1 | 2 | 8).u32(pts.length);
    for (const [x, y] of pts) b.i32(x! * 16).i32(y! * 16);
  };
  const b = base(new Body(), 0, rect(0, 0, W, H))
    .ptr(path)
    .u8(0)
    .u8(BrushType.SOLID)
    .u32(0x00ffffff)
    .u16(Ropd.OP_XOR)
    .u16(0);
  const r = await play(surfaceCreate(0, W, H), paint(pic), msg(DisplayMsg.DRAW_STROKE, b));
  const onOutline = (x: number, y: number) =>
    ((y === 1 || y === 6) && x >= 1 && x <= 9) || ((x === 1 || x === 9) && y >= 1 && y <= 6);
  const want = expectPic(pic, (x, y, d) => (onOutline(x, y) ? [~d[0], ~d[1], ~d[2], 255] : null));
  assertPic(surfaceOf(r), want, 'rectangle outline');
  assert.equal(r.display.displayStats.drawn.DRAW_STROKE, 1);
});

test('DRAW_STROKE: a polyline that doubles back is XORed twice where it overlaps', async () => {
  const pic = testPic(W, H, 87);
  // (1,2) → (6,2) → (2,2): the first segment draws x 1..5, the second x 6..3; 3, 4, 5 twice.
  const path = (b: Body) => b.u32(1).u8(1 | 2).u32(3).i32(16).i32(32).i32(96).i32(32).i32(32).i32(32);
  const b = base(new Body(), 0, rect(0, 0, W, H))
    .ptr(path)
    .u8(0)
    .u8(BrushType.SOLID)
    .u32(0xffffff)
    .u16(Ropd.OP_XOR)
    .u16(0);
  const r = await play(surfaceCreate(0, W, H), paint(pic), msg(DisplayMsg.DRAW_STROKE, b));
  const want = expectPic(pic, (x, y, d) => (y === 2 && [1, 2, 6].includes(x) ? [~d[0], ~d[1], ~d[2], 255] : null));
  assertPic(surfaceOf(r), want, 'doubled back');
});

test('DRAW_STROKE styled: dashes on and off along the pixels, continued across segments; START_WITH_GAP', async () => {
  const pic = testPic(W, H, 85);
  // (0,1) → (7,1) → (7,5): dash list 2 on, 1 off (28.4 values), one unit per pixel of the major axis.
  const path = (b: Body) => b.u32(1).u8(1 | 2).u32(3).i32(0).i32(16).i32(112).i32(16).i32(112).i32(80);
  const stroke = (flags: number) => {
    const b = base(new Body(), 0, rect(0, 0, W, H)).ptr(path).u8(flags).u8(2).ptr((s) => s.i32(32).i32(16));
    return msg(DisplayMsg.DRAW_STROKE, b.u8(BrushType.SOLID).u32(0xffffff).u16(Ropd.OP_XOR).u16(0));
  };
  const pixels = [[0, 1], [1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [6, 1], [7, 1], [7, 2], [7, 3], [7, 4]];
  // Plain: 2 on, 1 off. START_WITH_GAP (Windows LA_STARTGAP): the first element is a gap: 2 off, 1 on.
  for (const [flags, on] of [[8, (i: number) => i % 3 !== 2], [8 | 4, (i: number) => i % 3 === 2]] as const) {
    const r = await play(surfaceCreate(0, W, H), paint(pic), stroke(flags));
    const lit = new Set(pixels.filter((_, i) => on(i)).map(([x, y]) => `${x},${y}`));
    const want = expectPic(pic, (x, y, d) => (lit.has(`${x},${y}`) ? [~d[0], ~d[1], ~d[2], 255] : null));
    assertPic(surfaceOf(r), want, `dashes, flags ${flags}`);
  }
});

test('DRAW_STROKE Bézier: control points on the chord flatten to the straight line; a curve stays inside its hull', async () => {
  const pic = testPic(W, H, 91);
  const stroke = (pts: number[][]) => {
    const path = (b: Body) => {
      b.u32(2).u8(1).u32(1).i32(pts[0]![0]! * 16).i32(pts[0]![1]! * 16); // BEGIN at p0
      b.u8(2 | 16).u32(3); // END | BEZIER with three points
      for (const [x, y] of pts.slice(1)) b.i32(x! * 16).i32(y! * 16);
    };
    return msg(
      DisplayMsg.DRAW_STROKE,
      base(new Body(), 0, rect(0, 0, W, H))
        .ptr(path)
        .u8(0)
        .u8(BrushType.SOLID)
        .u32(0xffffff)
        .u16(Ropd.OP_XOR)
        .u16(0),
    );
  };
  const r = await play(surfaceCreate(0, W, H), paint(pic), stroke([[1, 1], [5, 3], [9, 5], [13, 7]]));
  const line = new Set(zeroLineRef(1, 1, 13, 7).map(([x, y]) => `${x},${y}`));
  assertPic(
    surfaceOf(r),
    expectPic(pic, (x, y, d) => (line.has(`${x},${y}`) ? [~d[0], ~d[1], ~d[2], 255] : null)),
    'straight Bézier',
  );
  const c = await play(surfaceCreate(0, W, H), paint(pic), stroke([[1, 10], [1, 0], [14, 0], [14, 10]]));
  let changed = 0;
  let top = H;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      if (px(surfaceOf(c), x, y).join() === px(pic, x, y).join()) continue;
      changed++;
      top = Math.min(top, y);
      assert.ok(x >= 1 && x <= 14 && y >= 0 && y <= 10, `pixel (${x}, ${y}) outside the control polygon`);
    }
  }
  assert.ok(changed > 20, `the curve was drawn (${changed} pixels)`);
  // The curve's apex, B(½), is at (7.5, 2.5): the highest drawn row is the one nearest to it.
  assert.ok(top === 2 || top === 3, `apex row ${top}`);
});

/** miZeroLine's Bresenham loop, step by step, for one segment without its end point. */
function zeroLineRef(x1: number, y1: number, x2: number, y2: number): [number, number][] {
  const adx = Math.abs(x2 - x1), ady = Math.abs(y2 - y1);
  const sx = x2 < x1 ? -1 : 1, sy = y2 < y1 ? -1 : 1;
  let octant = (x2 < x1 ? 4 : 0) | (y2 < y1 ? 2 : 0);
  const out: [number, number][] = [];
  const bias = (1 << 3) | (1 << 7) | (1 << 6) | (1 << 4);
  let x = x1, y = y1;
  if (adx > ady) {
    const e1 = ady * 2, e2 = e1 - adx * 2;
    let e = e1 - adx - ((bias >> octant) & 1);
    e -= e1;
    for (let n = adx; n > 0; n--) {
      out.push([x, y]);
      e += e1;
      if (e >= 0) { y += sy; e += e2 - e1; }
      x += sx;
    }
  } else {
    octant |= 1;
    const e1 = adx * 2, e2 = e1 - ady * 2;
    let e = e1 - ady - ((bias >> octant) & 1);
    e -= e1;
    for (let n = ady; n > 0; n--) {
      out.push([x, y]);
      e += e1;
      if (e >= 0) { x += sx; e += e2 - e1; }
      y += sy;
    }
  }
  return out;
}

test('DRAW_STROKE property: any segment, clipped by box and clip rects, equals the step-by-step Bresenham', async () => {
  const coord = fc.integer({ min: -20, max: 40 });
  await fc.assert(
    fc.asyncProperty(
      coord,
      coord,
      coord,
      coord,
      fc.integer({ min: 0, max: 15 }),
      fc.integer({ min: 0, max: 15 }),
      async (x1, y1, x2, y2, fx, fy) => {
      const pic = testPic(W, H, 89);
      const path = (b: Body) => b.u32(1).u8(1 | 2).u32(2).i32(x1 * 16 + fx).i32(y1 * 16 + fy).i32(x2 * 16).i32(y2 * 16);
      const box = rect(1, 0, 15, 11);
      const clip = [rect(0, 0, 9, 12), rect(10, 2, 16, 9)];
      const b = base(new Body(), 0, box, clip)
        .ptr(path)
        .u8(0)
        .u8(BrushType.SOLID)
        .u32(0xffffff)
        .u16(Ropd.OP_XOR)
        .u16(0);
      const r = await play(surfaceCreate(0, W, H), paint(pic), msg(DisplayMsg.DRAW_STROKE, b));
      // fix_to_int: a fraction above one half rounds up.
      const sx1 = x1 + (fx > 8 ? 1 : 0), sy1 = y1 + (fy > 8 ? 1 : 0);
      const pts = new Set(zeroLineRef(sx1, sy1, x2, y2).map(([x, y]) => `${x},${y}`));
      const want = expectPic(pic, (x, y, d) =>
        pts.has(`${x},${y}`) && drawable(x, y, box, clip) ? [~d[0], ~d[1], ~d[2], 255] : null,
      );
      assertPic(surfaceOf(r), want, `(${sx1},${sy1})→(${x2},${y2})`);
    },
    ),
    { numRuns: 150 },
  );
});

/** A DRAW_TEXT message with glyphs given as rows of coverage values (top row first). */
function textMsg(
  box: R,
  depth: 1 | 4 | 8,
  glyphs: { x: number; y: number; rows: number[][] }[],
  fore: number,
  back: { area: R; color: number } | null,
  foreMode: number = Ropd.OP_PUT,
): Uint8Array {
  const flag = depth === 1 ? 1 : depth === 4 ? 2 : 4;
  const str = (b: Body) => {
    b.u16(glyphs.length).u8(flag);
    for (const g of glyphs) {
      const w = g.rows[0]!.length, h = g.rows.length;
      b.i32(g.x).i32(g.y).i32(0).i32(0).u16(w).u16(h);
      for (let row = h - 1; row >= 0; row--) { // bottom-up
        const stride = depth === 8 ? w : (w * depth + 7) >> 3;
        const bytes = new Array<number>(stride).fill(0);
        g.rows[row]!.forEach((v, x) => {
          if (depth === 1) bytes[x >> 3]! |= v ? 0x80 >> (x & 7) : 0;
          else if (depth === 4) bytes[x >> 1]! |= x & 1 ? v >> 4 : v & 0xf0;
          else bytes[x] = v;
        });
        b.bytes(bytes);
      }
    }
  };
  const b = base(new Body(), 0, box).ptr(str).rect(back?.area ?? rect(0, 0, 0, 0)).u8(BrushType.SOLID).u32(fore);
  b.u8(back ? BrushType.SOLID : BrushType.NONE);
  if (back) b.u32(back.color);
  return msg(DisplayMsg.DRAW_TEXT, b.u16(foreMode).u16(Ropd.OP_PUT));
}

test('DRAW_TEXT: A1 glyphs over a back area; A4 and A8 coverage blended OVER (A4 nibble n → n·16)', async () => {
  const pic = testPic(W, H, 97);
  const g1 = { x: 2, y: 2, rows: [[1, 0, 1], [0, 1, 0], [1, 1, 1], [1, 0, 0]] };
  const g2 = { x: 4, y: 3, rows: [[1, 1], [0, 1]] }; // overlaps g1: OR
  const box = rect(1, 1, 9, 9);
  const r = await play(
    surfaceCreate(0, W, H),
    paint(pic),
    textMsg(box, 1, [g1, g2], 0x102030, { area: rect(0, 0, 7, 5), color: 0xa0b0c0 }),
  );
  const cov = (x: number, y: number, gs: typeof g1[]) => Math.max(0, ...gs.map((g) => {
    const gx = x - g.x, gy = y - g.y;
    return gx >= 0 && gy >= 0 && gy < g.rows.length && gx < g.rows[0]!.length ? g.rows[gy]![gx]! : 0;
  }));
  const want = expectPic(pic, (x, y, d) => {
    if (!drawable(x, y, box, null)) return null;
    if (cov(x, y, [g1, g2])) return [0x10, 0x20, 0x30, 255];
    return inside(x, y, rect(0, 0, 7, 5)) ? [0xa0, 0xb0, 0xc0, 255] : d;
  });
  assertPic(surfaceOf(r), want, 'A1 text');

  const div255 = (v: number) => Math.round(v / 255);
  for (const depth of [4, 8] as const) {
    const ga = { x: 3, y: 2, rows: [[255, 128, 17, 0], [64, 200, 255, 31]] };
    const gb = { x: 5, y: 3, rows: [[100, 250], [7, 90]] }; // overlaps: max
    const rr = await play(
      surfaceCreate(0, W, H),
      paint(pic),
      textMsg(rect(0, 0, W, H), depth, [ga, gb], 0xc0ffee, null),
    );
    const want2 = expectPic(pic, (x, y, d) => {
      let m = cov(x, y, [ga, gb]);
      if (depth === 4) m &= 0xf0;
      if (!m) return null;
      const s = [0xc0, 0xff, 0xee].map((v) => div255(v * m));
      return [0, 1, 2].map((c) => Math.min(255, s[c]! + div255(d[c]! * (255 - m)))).concat(255) as Px;
    });
    assertPic(surfaceOf(rr), want2, `A${depth} text`);
  }
  // A back area with a fore mode other than PUT: the reference draws nothing at all.
  const none = await play(
    surfaceCreate(0, W, H),
    paint(pic),
    textMsg(box, 1, [g1], 0, { area: box, color: 0 }, Ropd.OP_XOR),
  );
  assertPic(surfaceOf(none), pic, 'nothing');
});

test('surface formats: 16_555 keeps 5 bits a channel and reads brush colours as r5g5b5; 32_ARGB keeps alpha', async () => {
  const fill = (sid: number, color: number, desc: number = Ropd.OP_PUT) =>
    msg(
      DisplayMsg.DRAW_FILL,
      noMask(
        base(new Body(), sid, rect(0, 0, 2, 1))
          .u8(BrushType.SOLID)
          .u32(color)
          .u16(desc),
      ),
    );
  // 0x7c1f = r 31, g 0, b 31 in x1r5g5b5.
  const r = await play(
    surfaceCreate(1, 2, 1, SurfaceFmt['16_555'], false),
    fill(1, 0x7c1f),
    surfaceCreate(2, 2, 1, SurfaceFmt['32_ARGB'], false),
  );
  assert.deepEqual(px(surfaceOf(r, 1), 0, 0), [255, 0, 255, 255]);
  assert.deepEqual(px(surfaceOf(r, 2), 1, 0), [0, 0, 0, 0], 'ARGB surfaces start transparent');
  const a = await play(
    surfaceCreate(2, 2, 1, SurfaceFmt['32_ARGB'], false),
    fill(2, 0x80402010),
    fill(2, 0x01010101, Ropd.OP_XOR),
  );
  assert.deepEqual(px(surfaceOf(a, 2), 0, 0), [0x41, 0x21, 0x11, 0x81], 'the rop applies to the alpha byte too');
  // Copying an ARGB surface onto the xRGB primary drops its alpha.
  const c = await play(
    surfaceCreate(0, 2, 1),
    surfaceCreate(2, 2, 1, SurfaceFmt['32_ARGB'], false),
    fill(2, 0x10203040),
    copyMsg(DisplayMsg.DRAW_COPY, rect(0, 0, 2, 1), surfaceImage(2, 2, 1), rect(0, 0, 2, 1), Ropd.OP_PUT, 1),
  );
  assert.deepEqual(px(surfaceOf(c), 1, 0), [0x20, 0x30, 0x40, 255]);
});

test('DRAW_COMPOSITE (not announced) is counted as skipped; the drawn counts name each command', async () => {
  const r = await play(
    surfaceCreate(0, 4, 4),
    msg(DisplayMsg.DRAW_COMPOSITE, base(new Body(), 0, rect(0, 0, 1, 1))),
    paint(testPic(4, 4)),
  );
  assert.deepEqual(r.display.displayStats.skipped, { DRAW_COMPOSITE: 1 });
  assert.deepEqual(r.display.displayStats.drawn, { DRAW_COPY: 1 });
});
