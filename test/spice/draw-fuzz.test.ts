// Fuzzing the drawing commands and their operand parsers (Brush, QMask, Path, LineAttr, String,
// images as sources, patterns and masks): structured messages with random fields, then corrupted
// and truncated, must draw or end in a typed SpiceProtocolError, never another exception or a hang;
// claims of huge sizes and counts must fail before anything is allocated from them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DisplayMsg, SurfaceFmt } from '../../src/spice/proto/constants.ts';
import { SpiceProtocolError } from '../../src/spice/proto/errors.ts';
import { replayDisplay } from './helpers/replay.ts';
import {
  Body,
  base,
  bitmapImage,
  fromCache,
  maskImage,
  msg,
  rect,
  surfaceCreate,
  surfaceImage,
  testPic,
} from './helpers/draw-msgs.ts';

const coord = fc.oneof(fc.integer({ min: -8, max: 40 }), fc.constantFrom(-(2 ** 31), 2 ** 31 - 1, 1 << 20));
const rectArb = fc.tuple(coord, coord, coord, coord).map(([l, t, r, b]) => rect(l, t, r, b));
const clipArb = fc.option(fc.array(rectArb, { maxLength: 4 }), { nil: null });

/** An Image operand: a small bitmap (cached or not), a cache reference, a surface, garbage, or NULL. */
const imageArb = fc.oneof(
  fc
    .record({
      w: fc.integer({ min: 1, max: 9 }),
      h: fc.integer({ min: 1, max: 9 }),
      seed: fc.nat(),
      cache: fc.boolean(),
      alpha: fc.boolean(),
    })
    .map(({ w, h, seed, cache, alpha }) => bitmapImage(testPic(w, h, seed), { id: 5, cacheMe: cache, alpha })),
  fc.constant(fromCache(5, 3, 3)),
  fc.integer({ min: 0, max: 3 }).map((id) => surfaceImage(id, 24, 16)),
  fc.uint8Array({ maxLength: 40 }).map((bytes) => (b: Body) => void b.bytes(bytes)),
  fc.constant(null),
);
const maskArb = fc.oneof(
  fc.constant(null),
  fc
    .record({
      bits: fc.array(fc.array(fc.integer({ min: 0, max: 1 }), { minLength: 5, maxLength: 5 }), {
        minLength: 1,
        maxLength: 6,
      }),
      le: fc.boolean(),
      up: fc.boolean(),
    })
    .map(({ bits, le, up }) => maskImage(bits, { le, bottomUp: up, id: 6, cacheMe: true })),
  imageArb,
);
const brushArb = fc.record({
  type: fc.integer({ min: 0, max: 3 }),
  color: fc.nat(),
  image: imageArb,
  x: coord,
  y: coord,
});

function brush(
  b: Body,
  v: { type: number; color: number; image: ((b: Body) => void) | null; x: number; y: number },
): Body {
  b.u8(v.type);
  if (v.type === 1) b.u32(v.color);
  if (v.type === 2) b.ptr(v.image).i32(v.x).i32(v.y);
  return b;
}

function mask(b: Body, m: ((b: Body) => void) | null, flags: number, x: number, y: number): Body {
  return b.u8(flags).i32(x).i32(y).ptr(m);
}

const pathArb = fc.array(
  fc.record({
    flags: fc.integer({ min: 0, max: 31 }),
    points: fc.array(fc.tuple(fc.integer({ min: -2000, max: 2000 }), fc.integer({ min: -2000, max: 2000 })), {
      maxLength: 7,
    }),
  }),
  { maxLength: 4 },
);
const glyphsArb = fc.array(
  fc.record({
    x: coord,
    y: coord,
    w: fc.integer({ min: 0, max: 12 }),
    h: fc.integer({ min: 0, max: 12 }),
    data: fc.uint8Array({ maxLength: 100 }),
  }),
  { maxLength: 5 },
);

/** One drawing command with random operands. */
const commandArb = fc.record({
  type: fc.constantFrom(104, 302, 303, 304, 305, 306, 307, 308, 309, 310, 311, 312, 313),
  surface: fc.integer({ min: 0, max: 2 }),
  box: rectArb,
  clip: clipArb,
  src: imageArb,
  srcArea: rectArb,
  brush: brushArb,
  brush2: brushArb,
  rop: fc.integer({ min: 0, max: 0xffff }),
  byte: fc.integer({ min: 0, max: 255 }),
  scale: fc.integer({ min: 0, max: 2 }),
  mask: maskArb,
  maskFlags: fc.integer({ min: 0, max: 1 }),
  mx: coord,
  my: coord,
  path: pathArb,
  lineFlags: fc.integer({ min: 0, max: 255 }),
  style: fc.array(fc.integer({ min: -100, max: 100 }), { maxLength: 5 }),
  glyphs: glyphsArb,
  strFlags: fc.integer({ min: 0, max: 15 }),
}).map((c) => {
  const b = base(new Body(), c.surface, c.box, c.clip);
  switch (c.type) {
    case DisplayMsg.COPY_BITS:
      b.i32(c.mx).i32(c.my);
      break;
    case DisplayMsg.DRAW_FILL:
      mask(brush(b, c.brush).u16(c.rop), c.mask, c.maskFlags, c.mx, c.my);
      break;
    case DisplayMsg.DRAW_OPAQUE:
      mask(brush(b.ptr(c.src).rect(c.srcArea), c.brush).u16(c.rop).u8(c.scale), c.mask, c.maskFlags, c.mx, c.my);
      break;
    case DisplayMsg.DRAW_COPY:
    case DisplayMsg.DRAW_BLEND:
      mask(b.ptr(c.src).rect(c.srcArea).u16(c.rop).u8(c.scale), c.mask, c.maskFlags, c.mx, c.my);
      break;
    case DisplayMsg.DRAW_BLACKNESS:
    case DisplayMsg.DRAW_WHITENESS:
    case DisplayMsg.DRAW_INVERS:
      mask(b, c.mask, c.maskFlags, c.mx, c.my);
      break;
    case DisplayMsg.DRAW_ROP3:
      mask(brush(b.ptr(c.src).rect(c.srcArea), c.brush).u8(c.byte).u8(c.scale), c.mask, c.maskFlags, c.mx, c.my);
      break;
    case DisplayMsg.DRAW_STROKE: {
      b.ptr((p) => {
        p.u32(c.path.length);
        for (const s of c.path) {
          p.u8(s.flags).u32(s.points.length);
          for (const [x, y] of s.points) p.i32(x).i32(y);
        }
      });
      b.u8(c.lineFlags);
      if (c.lineFlags & 8) b.u8(c.style.length).ptr((p) => c.style.forEach((v) => p.i32(v * 16)));
      brush(b, c.brush).u16(c.rop).u16(c.rop >> 3);
      break;
    }
    case DisplayMsg.DRAW_TEXT:
      b.ptr((p) => {
        p.u16(c.glyphs.length).u8(c.strFlags);
        const depth = c.strFlags & 1 ? 1 : c.strFlags & 2 ? 4 : 8;
        for (const g of c.glyphs) {
          p.i32(g.x).i32(g.y).i32(0).i32(0).u16(g.w).u16(g.h);
          const need = ((g.w * depth + 7) >> 3) * g.h;
          p.bytes(Array.from({ length: need }, (_, i) => g.data[i % Math.max(1, g.data.length)] ?? 0));
        }
      });
      brush(brush(b.rect(c.srcArea), c.brush), c.brush2).u16(c.rop).u16(c.rop);
      break;
    case DisplayMsg.DRAW_TRANSPARENT:
      b.ptr(c.src).rect(c.srcArea).u32(c.brush.color).u32(c.brush2.color);
      break;
    case DisplayMsg.DRAW_ALPHA_BLEND:
      b.u8(c.maskFlags * 3).u8(c.byte).ptr(c.src).rect(c.srcArea);
      break;
  }
  return msg(c.type, b);
});

const SETUP = [
  surfaceCreate(0, 24, 16),
  surfaceCreate(1, 12, 10, SurfaceFmt['32_ARGB'], false),
  surfaceCreate(2, 10, 8, SurfaceFmt['16_565'], false),
];

async function replayAll(msgs: Uint8Array[]): Promise<Error | undefined> {
  const all = [...SETUP, ...msgs];
  const bytes = new Uint8Array(all.reduce((n, m) => n + m.length, 0));
  let o = 0;
  for (const m of all) {
    bytes.set(m, o);
    o += m.length;
  }
  return (await replayDisplay(bytes, 4096, 1 << 20)).error;
}

test('fuzz: random drawing commands on xRGB, ARGB and 16-bit surfaces draw or end in a typed error', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 6 }), async (cmds) => {
      const e = await replayAll(cmds);
      if (e) assert.ok(e instanceof SpiceProtocolError, `${e.name}: ${e.message}\n${e.stack}`);
    }),
    { numRuns: 600 },
  );
});

test('fuzz: the same commands corrupted and truncated', async () => {
  await fc.assert(
    fc.asyncProperty(
      commandArb,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      fc.nat(),
      async (cmd, flips, cut) => {
      const m = cmd.slice(0, Math.max(6, cmd.length - (cut % 24)));
      for (const [at, v] of flips) m[6 + (at % Math.max(1, m.length - 6))] = v;
      // Keep the header's size field consistent with what is left, so the body itself is what's broken.
      new DataView(m.buffer).setUint32(2, m.length - 6, true);
      const e = await replayAll([m]);
      if (e) assert.ok(e instanceof SpiceProtocolError, `${e.name}: ${e.message}`);
    },
    ),
    { numRuns: 800 },
  );
});

test('huge claimed sizes and counts fail before allocation, and huge geometry is clipped, all quickly', async () => {
  const cases: [string, Uint8Array, RegExp | null][] = [
    [
      'clip rect count 2^32-1',
      msg(
        DisplayMsg.DRAW_FILL,
        new Body()
          .u32(0)
          .rect(rect(0, 0, 5, 5))
          .u8(1)
          .u32(0xffffffff),
      ),
      /exceed/,
    ],
    [
      'path of 2^31 segments',
      msg(
        DisplayMsg.DRAW_STROKE,
        base(new Body(), 0, rect(0, 0, 24, 16))
          .ptr((p) => p.u32(2 ** 31))
          .u8(0)
          .u8(0)
          .u16(8)
          .u16(8),
      ),
      /exceed/,
    ],
    [
      'path segment of 2^30 points',
      msg(
        DisplayMsg.DRAW_STROKE,
        base(new Body(), 0, rect(0, 0, 24, 16))
          .ptr((p) =>
            p
              .u32(1)
              .u8(3)
              .u32(2 ** 30),
          )
          .u8(0)
          .u8(0)
          .u16(8)
          .u16(8),
      ),
      /exceed/,
    ],
    [
      'string of 65535 glyphs',
      msg(
        DisplayMsg.DRAW_TEXT,
        base(new Body(), 0, rect(0, 0, 24, 16))
          .ptr((p) => p.u16(65535).u8(1))
          .rect(rect(0, 0, 0, 0))
          .u8(0)
          .u8(0)
          .u16(8)
          .u16(8),
      ),
      /exceed/,
    ],
    [
      'glyph of 65535×65535',
      msg(
        DisplayMsg.DRAW_TEXT,
        base(new Body(), 0, rect(0, 0, 24, 16))
          .ptr((p) => p.u16(1).u8(4).i32(0).i32(0).i32(0).i32(0).u16(65535).u16(65535))
          .rect(rect(0, 0, 0, 0))
          .u8(0)
          .u8(0)
          .u16(8)
          .u16(8),
      ),
      /beyond end/,
    ],
    [
      'mask bitmap of 2^16×2^16',
      msg(
        DisplayMsg.DRAW_BLACKNESS,
        base(new Body(), 0, rect(0, 0, 24, 16))
          .u8(0)
          .i32(0)
          .i32(0)
          .ptr((p) => p.u64(0).u8(0).u8(0).u32(65536).u32(65536).u8(2).u8(4).u32(65536).u32(65536).u32(8192).u32(0)),
      ),
      /exceeds the limit/,
    ],
    [
      'line from -2^27 to 2^27',
      msg(
        DisplayMsg.DRAW_STROKE,
        base(new Body(), 0, rect(-(2 ** 31), -(2 ** 31), 2 ** 31 - 1, 2 ** 31 - 1))
          .ptr((p) =>
            p
              .u32(1)
              .u8(3)
              .u32(2)
              .i32(-(2 ** 31))
              .i32(-(2 ** 30))
              .i32(2 ** 31 - 1)
              .i32(2 ** 30),
          )
          .u8(0)
          .u8(1)
          .u32(0xffffff)
          .u16(64)
          .u16(8),
      ),
      null,
    ],
    [
      'Bézier with all points equal',
      msg(
        DisplayMsg.DRAW_STROKE,
        base(new Body(), 0, rect(0, 0, 24, 16))
          .ptr((p) =>
            p
              .u32(1)
              .u8(1 | 2 | 16)
              .u32(4)
              .i32(80)
              .i32(80)
              .i32(80)
              .i32(80)
              .i32(80)
              .i32(80)
              .i32(80)
              .i32(80),
          )
          .u8(0)
          .u8(1)
          .u32(0xffffff)
          .u16(64)
          .u16(8),
      ),
      null,
    ],
    [
      'styled line with dashes of zero',
      msg(
        DisplayMsg.DRAW_STROKE,
        base(new Body(), 0, rect(0, 0, 24, 16))
          .ptr((p) => p.u32(1).u8(3).u32(2).i32(0).i32(0).i32(300).i32(200))
          .u8(8 | 4)
          .u8(3)
          .ptr((s) => s.i32(0).i32(0).i32(0))
          .u8(1)
          .u32(0xffffff)
          .u16(64)
          .u16(8),
      ),
      null,
    ],
    [
      'scaled copy of a 1×1 source to a box of 2^31',
      msg(
        DisplayMsg.DRAW_COPY,
        base(new Body(), 0, rect(-(2 ** 31), -(2 ** 31), 2 ** 31 - 1, 2 ** 31 - 1))
          .ptr(bitmapImage(testPic(1, 1)))
          .rect(rect(0, 0, 1, 1))
          .u16(8)
          .u8(0)
          .u8(0)
          .i32(0)
          .i32(0)
          .u32(0),
      ),
      null,
    ],
  ];
  for (const [what, m, expect] of cases) {
    const t0 = Date.now();
    const e = await replayAll([m]);
    if (expect) {
      assert.ok(e instanceof SpiceProtocolError, `${what}: ${e}`);
      assert.match(e.message, expect, what);
    } else {
      assert.equal(e, undefined, `${what}: ${e}`);
    }
    assert.ok(Date.now() - t0 < 5000, `${what} took ${Date.now() - t0} ms`);
  }
});

