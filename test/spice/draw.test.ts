// The GDI drawing commands of the display channel, end to end through the real DisplayChannel over
// a fake transport: each test builds the wire message, replays it onto a surface holding a known
// picture, and compares every pixel with a reference computed here, pixel by pixel, from the
// semantics of spice-common's software canvas (canvas_base.c / sw_canvas.c / pixman), written
// independently of src/spice/draw.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BrushType, DisplayMsg, Ropd, SurfaceFmt } from '../../src/spice/proto/constants.ts';
import {
  Body, base, bitmapImage, fromCache, maskImage, msg, play, px, rect, surfaceCreate, surfaceImage, surfaceOf, testPic,
  type Pic,
} from './helpers/draw-msgs.ts';
import {
  H, W, assertPic, copyMsg, drawable, expectPic, get, inside, noMask, paint, type Px,
} from './helpers/draw-expect.ts';

/** spice.proto ropd, per channel value: the OP_* bit chosen by priority, operands and result inverted per flag. */
function ropdRef(desc: number, s: number, d: number, srcFlag: number, destFlag: number): number {
  if (
    desc & Ropd.OP_PUT ||
    !(desc & (Ropd.OP_OR | Ropd.OP_AND | Ropd.OP_XOR | Ropd.OP_BLACKNESS | Ropd.OP_WHITENESS | Ropd.OP_INVERS))
  ) {
    const v = desc & srcFlag ? ~s : s;
    return desc & Ropd.INVERS_RES ? ~v : v;
  }
  const si = desc & srcFlag ? ~s : s;
  const di = desc & destFlag ? ~d : d;
  let v: number;
  if (desc & Ropd.OP_OR) v = si | di;
  else if (desc & Ropd.OP_AND) v = si & di;
  else if (desc & Ropd.OP_XOR) v = si ^ di;
  else if (desc & Ropd.OP_BLACKNESS) return 0;
  else if (desc & Ropd.OP_WHITENESS) return 255;
  else return ~d;
  return desc & Ropd.INVERS_RES ? ~v : v;
}

const OPS = [Ropd.OP_PUT, Ropd.OP_OR, Ropd.OP_AND, Ropd.OP_XOR];
const FLAG_SETS = [
  0,
  Ropd.INVERS_SRC,
  Ropd.INVERS_BRUSH,
  Ropd.INVERS_DEST,
  Ropd.INVERS_RES,
  Ropd.INVERS_BRUSH | Ropd.INVERS_DEST | Ropd.INVERS_RES,
  Ropd.INVERS_SRC | Ropd.INVERS_DEST,
];
const DESCRIPTORS = [
  ...OPS.flatMap((op) => FLAG_SETS.map((f) => op | f)),
  Ropd.OP_BLACKNESS,
  Ropd.OP_WHITENESS,
  Ropd.OP_INVERS,
  Ropd.OP_INVERS | Ropd.INVERS_RES,
  0,
];

test('DRAW_FILL, solid brush: every rop descriptor, overlapping clip rects applied once', async () => {
  const pic = testPic(W, H, 3);
  const box = rect(2, 3, 14, 11);
  const clip = [rect(0, 0, 8, 12), rect(5, 5, 12, 9)]; // they overlap on (5..8, 5..9)
  const color = 0x7f3c96e1; // alpha byte 0x7f is irrelevant on xRGB
  for (const desc of DESCRIPTORS) {
    const b = base(new Body(), 0, box, clip).u8(BrushType.SOLID).u32(color).u16(desc);
    const r = await play(surfaceCreate(0, W, H), paint(pic), msg(DisplayMsg.DRAW_FILL, noMask(b)));
    const s = [0x3c, 0x96, 0xe1];
    const want = expectPic(pic, (x, y, d) =>
      drawable(x, y, box, clip)
        ? ([0, 1, 2, 3].map((c) => ropdRef(desc, s[c] ?? 0, d[c]!, Ropd.INVERS_BRUSH, Ropd.INVERS_DEST)) as Px)
        : null,
    );
    assertPic(surfaceOf(r), want, `ropd 0x${desc.toString(16)}`);
    assert.equal(r.display.displayStats.drawn.DRAW_FILL, 1);
  }
});

test('DRAW_FILL by hand: XOR of 0x00ff00 turns (10, 20, 30) into (10, 235, 30); OP_INVERS inverts', async () => {
  const pic: Pic = { width: 2, height: 1, rgba: Uint8Array.of(10, 20, 30, 255, 1, 2, 3, 255) };
  const fill = (desc: number, l: number) =>
    msg(
      DisplayMsg.DRAW_FILL,
      noMask(
        base(new Body(), 0, rect(l, 0, l + 1, 1))
          .u8(BrushType.SOLID)
          .u32(0x00ff00)
          .u16(desc),
      ),
    );
  const r = await play(surfaceCreate(0, 2, 1), paint(pic), fill(Ropd.OP_XOR, 0), fill(Ropd.OP_INVERS, 1));
  assert.deepEqual(px(surfaceOf(r), 0, 0), [10, 235, 30, 255]);
  assert.deepEqual(px(surfaceOf(r), 1, 0), [254, 253, 252, 255]);
});

test('DRAW_FILL, pattern brush tiled from pos, with AND rop and a 1BIT_LE bottom-up mask', async () => {
  const pic = testPic(W, H, 5);
  const pat = testPic(3, 2, 9);
  const box = rect(1, 1, 13, 10);
  const bits = Array.from({ length: 6 }, (_, y) => Array.from({ length: 7 }, (_, x) => (x * 3 + y) % 4 === 0 ? 0 : 1));
  const maskPos = { x: 2, y: 1 };
  const b = base(new Body(), 0, box).u8(BrushType.PATTERN).ptr(bitmapImage(pat)).i32(5).i32(-4).u16(Ropd.OP_AND);
  b.u8(0).i32(maskPos.x).i32(maskPos.y).ptr(maskImage(bits, { le: true, bottomUp: true }));
  const r = await play(surfaceCreate(0, W, H), paint(pic), msg(DisplayMsg.DRAW_FILL, b));
  const mod = (a: number, n: number) => ((a % n) + n) % n;
  const want = expectPic(pic, (x, y, d) => {
    if (!drawable(x, y, box, null)) return null;
    const mx = x - box.l + maskPos.x;
    const my = y - box.t + maskPos.y;
    if (my < 0 || my >= 6 || mx < 0 || mx >= 7 || !bits[my]![mx]) return null;
    const p = get(pat, mod(x - 5, 3), mod(y + 4, 2));
    return [p[0] & d[0], p[1] & d[1], p[2] & d[2], 255];
  });
  assertPic(surfaceOf(r), want, 'pattern AND through mask');
});

test('DRAW_BLACKNESS / WHITENESS / INVERS through an inverted 1BIT_BE mask, cached and reused FROM_CACHE', async () => {
  const pic = testPic(W, H, 7);
  const bits = [[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 0]];
  const box = rect(3, 2, 9, 7);
  const withMask = (type: number, image: (b: Body) => void, invert: boolean) =>
    msg(
      type,
      base(new Body(), 0, box)
        .u8(invert ? 1 : 0)
        .i32(1)
        .i32(0)
        .ptr(image),
    );
  const r = await play(
    surfaceCreate(0, W, H), paint(pic),
    withMask(DisplayMsg.DRAW_BLACKNESS, maskImage(bits, { id: 77, cacheMe: true }), true),
    withMask(DisplayMsg.DRAW_INVERS, fromCache(77, 4, 3), false),
  );
  const masked = (x: number, y: number): number | null => {
    const mx = x - box.l + 1;
    const my = y - box.t;
    return mx >= 0 && mx < 4 && my >= 0 && my < 3 && drawable(x, y, box, null) ? bits[my]![mx]! : null;
  };
  const want = expectPic(pic, (x, y, d) => {
    const m = masked(x, y);
    if (m === null) return null;
    const afterBlack: Px = m === 0 ? [0, 0, 0, 255] : d; // inverted mask: draws where the bit is clear
    return m === 1 ? [~afterBlack[0], ~afterBlack[1], ~afterBlack[2], 255] : afterBlack;
  });
  assertPic(surfaceOf(r), want, 'blackness then invers');
  const w = await play(
    surfaceCreate(0, 4, 1),
    paint(testPic(4, 1)),
    msg(DisplayMsg.DRAW_WHITENESS, noMask(base(new Body(), 0, rect(1, 0, 3, 1)))),
  );
  assert.deepEqual([px(surfaceOf(w), 1, 0), px(surfaceOf(w), 2, 0)], [[255, 255, 255, 255], [255, 255, 255, 255]]);
  assert.deepEqual(px(surfaceOf(w), 0, 0), px(testPic(4, 1), 0, 0));
});

test('DRAW_COPY and DRAW_BLEND with rop descriptors; the source clips the draw', async () => {
  const pic = testPic(W, H, 11);
  const src = testPic(6, 5, 13);
  const box = rect(4, 2, 12, 8); // 8×6 from src_area (1,1)-(9,7): only 5×4 source pixels exist
  const srcArea = rect(1, 1, 9, 7);
  for (const type of [DisplayMsg.DRAW_COPY, DisplayMsg.DRAW_BLEND]) {
    for (const desc of [
      Ropd.OP_PUT,
      Ropd.OP_XOR | Ropd.INVERS_SRC,
      Ropd.OP_OR | Ropd.INVERS_DEST | Ropd.INVERS_RES,
      Ropd.OP_AND | Ropd.INVERS_BRUSH,
    ]) {
      const r = await play(surfaceCreate(0, W, H), paint(pic), copyMsg(type, box, bitmapImage(src), srcArea, desc, 1));
      const want = expectPic(pic, (x, y, d) => {
        if (!drawable(x, y, box, null)) return null;
        const sx = x - box.l + srcArea.l;
        const sy = y - box.t + srcArea.t;
        if (sx >= src.width || sy >= src.height) return null;
        const s = get(src, sx, sy);
        return [0, 1, 2, 3].map((c) => ropdRef(desc, s[c]!, d[c]!, Ropd.INVERS_SRC, Ropd.INVERS_DEST)) as Px;
      });
      assertPic(surfaceOf(r), want, `type ${type} ropd 0x${desc.toString(16)}`);
    }
  }
});

test('DRAW_COPY with a mask, a clip, a bottom-up RGBA source: alpha is dropped on an xRGB surface', async () => {
  const pic = testPic(W, H, 17);
  const src = testPic(10, 8, 19);
  for (let i = 3; i < src.rgba.length; i += 8) src.rgba[i] = 7; // half the pixels nearly transparent
  const box = rect(3, 2, 13, 10);
  const clip = [rect(0, 0, 9, 6), rect(9, 4, 16, 12)];
  const bits = Array.from({ length: 8 }, (_, y) => Array.from({ length: 10 }, (_, x) => (x + y) % 3 ? 1 : 0));
  const b = base(new Body(), 0, box, clip)
    .ptr(bitmapImage(src, { alpha: true, bottomUp: true }))
    .rect(rect(0, 0, 10, 8))
    .u16(Ropd.OP_PUT)
    .u8(1);
  b.u8(0).i32(0).i32(0).ptr(maskImage(bits));
  const r = await play(surfaceCreate(0, W, H), paint(pic), msg(DisplayMsg.DRAW_COPY, b));
  const want = expectPic(pic, (x, y) =>
    drawable(x, y, box, clip) && bits[y - box.t]![x - box.l] ? get(src, x - box.l, y - box.t) : null,
  );
  assertPic(surfaceOf(r), want, 'masked, clipped copy');
});

/** pixman's sample position for destination index j: fs·(j + ½) rounded half up, + origin, in 1/65536. */
function refPos(srcStart: number, srcLen: number, destLen: number, j: number): number {
  const fs = Math.trunc((srcLen * 65536) / destLen);
  return Math.floor((fs * (2 * j + 1) + 1) / 2) + srcStart * 65536;
}

test('DRAW_COPY scaled: NEAREST and INTERPOLATE (bilinear, 7-bit weights) as pixman samples', async () => {
  const pic = testPic(W, H, 23);
  const src = testPic(7, 5, 29);
  const box = rect(1, 1, 15, 11); // 14×10 from 5×4: up-scaled
  const srcArea = rect(1, 1, 6, 5);
  const srcPx = (x: number, y: number): Px =>
    x < 0 || y < 0 || x >= src.width || y >= src.height ? [0, 0, 0, 0] : get(src, x, y);
  for (const mode of [1, 0]) {
    const r = await play(
      surfaceCreate(0, W, H),
      paint(pic),
      copyMsg(DisplayMsg.DRAW_COPY, box, bitmapImage(src), srcArea, Ropd.OP_PUT, mode),
    );
    const want = expectPic(pic, (x, y) => {
      if (!drawable(x, y, box, null)) return null;
      const px_ = refPos(srcArea.l, 5, 14, x - box.l);
      const py_ = refPos(srcArea.t, 4, 10, y - box.t);
      if (mode === 1) return srcPx(Math.floor((px_ - 1) / 65536), Math.floor((py_ - 1) / 65536));
      const fx = px_ - 32768;
      const fy = py_ - 32768;
      const x0 = Math.floor(fx / 65536);
      const y0 = Math.floor(fy / 65536);
      const wx = Math.floor((fx - x0 * 65536) / 512);
      const wy = Math.floor((fy - y0 * 65536) / 512);
      return [0, 1, 2, 3].map((c) => {
        const v =
          srcPx(x0, y0)[c]! * (128 - wx) * (128 - wy) +
          srcPx(x0 + 1, y0)[c]! * wx * (128 - wy) +
          srcPx(x0, y0 + 1)[c]! * (128 - wx) * wy +
          srcPx(x0 + 1, y0 + 1)[c]! * wx * wy;
        return Math.floor(v / 16384);
      }) as Px;
    });
    assertPic(surfaceOf(r), want, mode === 1 ? 'nearest' : 'bilinear');
  }
  // Down-scaling with a rop: the scaled source goes through the rop.
  const down = await play(
    surfaceCreate(0, W, H),
    paint(pic),
    copyMsg(DisplayMsg.DRAW_COPY, rect(2, 2, 5, 4), bitmapImage(src), rect(0, 0, 7, 5), Ropd.OP_XOR, 1),
  );
  const want = expectPic(pic, (x, y, d) => {
    if (!drawable(x, y, rect(2, 2, 5, 4), null)) return null;
    const s = srcPx(Math.floor((refPos(0, 7, 3, x - 2) - 1) / 65536), Math.floor((refPos(0, 5, 2, y - 2) - 1) / 65536));
    return [s[0] ^ d[0], s[1] ^ d[1], s[2] ^ d[2], 255];
  });
  assertPic(surfaceOf(down), want, 'down-scaled XOR');
});

test('DRAW_OPAQUE: source put, then the brush combined with it by the rop (brush vs source inversions)', async () => {
  const pic = testPic(W, H, 31);
  const src = testPic(8, 6, 37);
  const box = rect(2, 2, 10, 8);
  for (const desc of [
    Ropd.OP_PUT,
    Ropd.OP_AND,
    Ropd.OP_XOR | Ropd.INVERS_SRC,
    Ropd.OP_OR | Ropd.INVERS_BRUSH | Ropd.INVERS_RES,
  ]) {
    const b = base(new Body(), 0, box)
      .ptr(bitmapImage(src))
      .rect(rect(0, 0, 8, 6))
      .u8(BrushType.SOLID)
      .u32(0x0f0f33)
      .u16(desc)
      .u8(1);
    const r = await play(surfaceCreate(0, W, H), paint(pic), msg(DisplayMsg.DRAW_OPAQUE, noMask(b)));
    const brush = [0x0f, 0x0f, 0x33, 0];
    const want = expectPic(pic, (x, y) => {
      if (!drawable(x, y, box, null)) return null;
      const s = get(src, x - box.l, y - box.t);
      return [0, 1, 2, 3].map((c) => ropdRef(desc, brush[c]!, s[c]!, Ropd.INVERS_BRUSH, Ropd.INVERS_SRC)) as Px;
    });
    assertPic(surfaceOf(r), want, `opaque ropd 0x${desc.toString(16)}`);
  }
});

/** Ternary rop per bit: result bit = bit ((p << 2) | (s << 1) | d) of the code. */
function rop3Ref(code: number, p: number, s: number, d: number): number {
  let v = 0;
  for (let bit = 0; bit < 8; bit++) {
    const i = (((p >> bit) & 1) << 2) | (((s >> bit) & 1) << 1) | ((d >> bit) & 1);
    v |= ((code >> i) & 1) << bit;
  }
  return v;
}

test('DRAW_ROP3: all 256 codes with a solid brush; a pattern brush and a mask', async () => {
  const pic = testPic(6, 4, 41);
  const src = testPic(6, 4, 43);
  const box = rect(1, 1, 5, 4);
  const msgs = [surfaceCreate(0, 6, 4), paint(pic)];
  const results: Pic[] = [];
  for (let code = 0; code < 256; code++) {
    const r = await play(
      ...msgs,
      msg(
        DisplayMsg.DRAW_ROP3,
        noMask(
          base(new Body(), 0, box)
            .ptr(bitmapImage(src))
            .rect(rect(0, 1, 4, 4))
            .u8(BrushType.SOLID)
            .u32(0x5a33c3)
            .u8(code)
            .u8(1),
        ),
      ),
    );
    const brush = [0x5a, 0x33, 0xc3];
    results.push(
      expectPic(pic, (x, y, d) =>
        drawable(x, y, box, null, 6, 4)
          ? ([0, 1, 2].map((c) => rop3Ref(code, brush[c]!, get(src, x - 1, y)[c]!, d[c]!)).concat(255) as Px)
          : null,
      ),
    );
    assertPic(surfaceOf(r), results[code]!, `rop3 0x${code.toString(16)}`);
  }
  // Pattern brush and a mask; code 0xB8 (PSDPxax).
  const pat = testPic(2, 3, 47);
  const bits = [[1, 1, 0, 1], [0, 1, 1, 1], [1, 0, 1, 0]];
  const b = base(new Body(), 0, box)
    .ptr(bitmapImage(src))
    .rect(rect(2, 0, 6, 3))
    .u8(BrushType.PATTERN)
    .ptr(bitmapImage(pat))
    .i32(1)
    .i32(2)
    .u8(0xb8)
    .u8(1);
  b.u8(0).i32(0).i32(0).ptr(maskImage(bits));
  const r = await play(...msgs, msg(DisplayMsg.DRAW_ROP3, b));
  const want = expectPic(pic, (x, y, d) => {
    if (!drawable(x, y, box, null, 6, 4) || !bits[y - 1]![x - 1]) return null;
    const p = get(pat, (((x - 1) % 2) + 2) % 2, (((y - 2) % 3) + 3) % 3);
    const s = get(src, x - 1 + 2, y - 1);
    return [0, 1, 2].map((c) => rop3Ref(0xb8, p[c]!, s[c]!, d[c]!)).concat(255) as Px;
  });
  assertPic(surfaceOf(r), want, 'rop3 pattern + mask');
});

test('DRAW_TRANSPARENT: source pixels of the key colour leave the destination alone', async () => {
  const pic = testPic(W, H, 53);
  const src = testPic(5, 4, 59);
  for (const [x, y] of [[0, 0], [2, 1], [4, 3]]) src.rgba.set([0x11, 0x22, 0x33, 255], (y! * 5 + x!) * 4);
  const box = rect(3, 3, 8, 7);
  const b = base(new Body(), 0, box).ptr(bitmapImage(src)).rect(rect(0, 0, 5, 4)).u32(0xdeadbeef).u32(0xff112233);
  const r = await play(surfaceCreate(0, W, H), paint(pic), msg(DisplayMsg.DRAW_TRANSPARENT, b));
  const want = expectPic(pic, (x, y) => {
    if (!drawable(x, y, box, null)) return null;
    const s = get(src, x - 3, y - 3);
    return s[0] === 0x11 && s[1] === 0x22 && s[2] === 0x33 ? null : s;
  });
  assertPic(surfaceOf(r), want, 'transparent');
});

test('DRAW_ALPHA_BLEND: premultiplied OVER with an overall alpha, rounded as pixman rounds', async () => {
  const pic = testPic(W, H, 61);
  const src = testPic(6, 5, 67);
  // Premultiplied RGBA: colour channels not above alpha.
  for (let i = 0; i < src.rgba.length; i += 4) {
    const a = src.rgba[i + 3] = (i * 37) & 255;
    for (let c = 0; c < 3; c++) src.rgba[i + c] = Math.floor((src.rgba[i + c]! * a) / 255);
  }
  const box = rect(5, 4, 11, 9);
  // x/255 rounded to nearest (what pixman's (t + (t >> 8)) >> 8 with t = x + 128 computes).
  const div255 = (v: number) => Math.round(v / 255);
  for (const alpha of [255, 128, 1]) {
    const b = base(new Body(), 0, box).u8(0).u8(alpha).ptr(bitmapImage(src, { alpha: true })).rect(rect(0, 0, 6, 5));
    const r = await play(surfaceCreate(0, W, H), paint(pic), msg(DisplayMsg.DRAW_ALPHA_BLEND, b));
    const want = expectPic(pic, (x, y, d) => {
      if (!drawable(x, y, box, null)) return null;
      const s = get(src, x - box.l, y - box.t).map((v) => div255(v * alpha));
      return [0, 1, 2].map((c) => Math.min(255, s[c]! + div255(d[c]! * (255 - s[3]!)))).concat(255) as Px;
    });
    assertPic(surfaceOf(r), want, `alpha ${alpha}`);
  }
});

test('DRAW_TRANSPARENT and DRAW_ALPHA_BLEND scaled: NEAREST sampling; outside the source is transparent black', async () => {
  const pic = testPic(W, H, 101);
  const src = testPic(4, 3, 103);
  src.rgba.set([0x11, 0x22, 0x33, 255], (1 * 4 + 2) * 4);
  const box = rect(2, 2, 12, 9); // 10×7 from 4×3 starting at (1, 0): the last columns fall outside the source
  const srcArea = rect(1, 0, 5, 3);
  const sample = (x: number, y: number): Px => {
    const sx = Math.floor((refPos(srcArea.l, 4, 10, x - box.l) - 1) / 65536);
    const sy = Math.floor((refPos(srcArea.t, 3, 7, y - box.t) - 1) / 65536);
    return sx < src.width && sy < src.height ? get(src, sx, sy) : [0, 0, 0, 0];
  };
  const t = await play(
    surfaceCreate(0, W, H),
    paint(pic),
    msg(DisplayMsg.DRAW_TRANSPARENT, base(new Body(), 0, box).ptr(bitmapImage(src)).rect(srcArea).u32(0).u32(0x112233)),
  );
  const wantT = expectPic(pic, (x, y) => {
    if (!drawable(x, y, box, null)) return null;
    const s = sample(x, y);
    return s[0] === 0x11 && s[1] === 0x22 && s[2] === 0x33 ? null : s;
  });
  assertPic(surfaceOf(t), wantT, 'scaled transparent');
  const a = await play(
    surfaceCreate(0, W, H),
    paint(pic),
    msg(DisplayMsg.DRAW_ALPHA_BLEND, base(new Body(), 0, box).u8(0).u8(200).ptr(bitmapImage(src)).rect(srcArea)),
  );
  const wantA = expectPic(pic, (x, y, d) => {
    if (!drawable(x, y, box, null)) return null;
    const s = sample(x, y).map((v) => Math.round((v * 200) / 255));
    return [0, 1, 2].map((c) => Math.min(255, s[c]! + Math.round((d[c]! * (255 - s[3]!)) / 255))).concat(255) as Px;
  });
  assertPic(surfaceOf(a), wantA, 'scaled alpha blend (always NEAREST)');
});

test('COPY_BITS: overlapping move within the surface, source clipped to the surface', async () => {
  const pic = testPic(W, H, 71);
  const box = rect(3, 2, 12, 9);
  const b = base(new Body(), 0, box, [rect(0, 0, 16, 5), rect(0, 4, 7, 12)]).i32(1).i32(1);
  const r = await play(surfaceCreate(0, W, H), paint(pic), msg(DisplayMsg.COPY_BITS, b));
  const want = expectPic(pic, (x, y) =>
    drawable(x, y, box, [rect(0, 0, 16, 5), rect(0, 4, 7, 12)]) ? get(pic, x - 2, y - 1) : null,
  );
  assertPic(surfaceOf(r), want, 'copy bits');
  // Source partly left of the surface: those destination pixels are not drawn.
  const r2 = await play(
    surfaceCreate(0, W, H),
    paint(pic),
    msg(
      DisplayMsg.COPY_BITS,
      base(new Body(), 0, rect(0, 0, 4, 2))
        .i32(-2)
        .i32(0),
    ),
  );
  const want2 = expectPic(pic, (x, y) => (x >= 2 && x < 4 && y < 2 ? get(pic, x - 2, y) : null));
  assertPic(surfaceOf(r2), want2, 'copy bits from outside');
});

test('an off-screen surface as the source of DRAW_COPY (image type SURFACE)', async () => {
  const pic = testPic(W, H, 73);
  const off = testPic(8, 6, 79);
  const r = await play(
    surfaceCreate(0, W, H), paint(pic), surfaceCreate(5, 8, 6, SurfaceFmt['32_xRGB'], false), paint(off, 5),
    copyMsg(DisplayMsg.DRAW_COPY, rect(4, 4, 10, 8), surfaceImage(5, 8, 6), rect(2, 1, 8, 5), Ropd.OP_PUT, 1),
  );
  const want = expectPic(pic, (x, y) => (inside(x, y, rect(4, 4, 10, 8)) ? get(off, x - 2, y - 3) : null));
  assertPic(surfaceOf(r), want, 'surface source');
  assert.equal(r.display.displayStats.decoded.surface, 1);
});
