// Cursor channel: every shape type (ALPHA, MONO, COLOR4/8/16/24/32) decoded to known pixels, the
// shape cache (CACHE_ME, FROM_CACHE, INVAL_ONE, INVAL_ALL, RESET, INIT, bounded size), and fuzzed
// cursor messages ending in typed errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CursorChannel, decodeCursorImage } from '../../src/spice/channels/cursor.ts';
import { CursorMsg, CursorType } from '../../src/spice/proto/constants.ts';
import { SpiceProtocolError } from '../../src/spice/proto/errors.ts';
import { Writer } from '../../src/spice/proto/writer.ts';
import { SpiceConnectionClosed } from '../../src/spice/transport.ts';
import { FakeWire, tick } from './helpers/fake.ts';
import { typed } from './helpers/fuzz.ts';

const MAX = 1 << 16;

/** AND mask rows, MSB first, padded to a byte. */
function maskRows(rows: number[][]): number[] {
  return rows.flatMap((row) => {
    const bytes = new Array<number>((row.length + 7) >> 3).fill(0);
    row.forEach((v, x) => (bytes[x >> 3]! |= v ? 0x80 >> (x & 7) : 0));
    return bytes;
  });
}

// 3×2 colour cursor: pixel colours (r, g, b) and the AND mask.
const RGB = [
  [[255, 0, 0], [0, 255, 0], [0, 0, 0]],
  [[16, 32, 48], [255, 255, 255], [0, 0, 0]],
];
const AND = [[0, 0, 1], [0, 1, 1]];
// Expected: AND 0 → colour; AND 1 + black → transparent; AND 1 + colour → opaque black (inversion).
const WANT = [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 0, 0, 16, 32, 48, 255, 0, 0, 0, 255, 0, 0, 0, 0];

test('COLOR32 / COLOR24: B,G,R(,x) rows then the AND mask', () => {
  const c32 = RGB.flatMap((row) => row.flatMap(([r, g, b]) => [b!, g!, r!, 0x5a]));
  assert.deepEqual(
    [...decodeCursorImage(CursorType.COLOR32, 3, 2, Uint8Array.from([...c32, ...maskRows(AND)]), MAX).data],
    WANT,
  );
  const c24 = RGB.flatMap((row) => row.flatMap(([r, g, b]) => [b!, g!, r!]));
  assert.deepEqual(
    [...decodeCursorImage(CursorType.COLOR24, 3, 2, Uint8Array.from([...c24, ...maskRows(AND)]), MAX).data],
    WANT,
  );
});

test('COLOR16: x1r5g5b5 little-endian, 5-bit channels widened by repeating their top bits', () => {
  const rgb = [[[31, 0, 0], [0, 31, 0], [0, 0, 0]], [[2, 4, 6], [31, 31, 31], [0, 0, 0]]];
  const c16 = rgb.flatMap((row) => row.flatMap(([r, g, b]) => {
    const v = (r! << 10) | (g! << 5) | b!;
    return [v & 255, v >> 8];
  }));
  const w5 = (v: number) => (v << 3) | (v >> 2);
  const img = decodeCursorImage(CursorType.COLOR16, 3, 2, Uint8Array.from([...c16, ...maskRows(AND)]), MAX);
  assert.deepEqual([...img.data.subarray(0, 8)], [255, 0, 0, 255, 0, 255, 0, 255]);
  assert.deepEqual([...img.data.subarray(12, 16)], [w5(2), w5(4), w5(6), 255]);
});

test('COLOR8 and COLOR4: indices, then a 256/16-entry palette of 0x00RRGGBB, then the AND mask', () => {
  const palette = (n: number) => {
    const p = new Array<number>(n * 4).fill(0);
    const set = (i: number, [r, g, b]: number[]) => p.splice(i * 4, 4, b!, g!, r!, 0);
    set(1, [255, 0, 0]);
    set(2, [0, 255, 0]);
    set(3, [16, 32, 48]);
    set(n - 1, [255, 255, 255]);
    return p;
  };
  const idx = [[1, 2, 0], [3, 255, 0]];
  const c8 = [...idx.flat(), ...palette(256), ...maskRows(AND)];
  assert.deepEqual([...decodeCursorImage(CursorType.COLOR8, 3, 2, Uint8Array.from(c8), MAX).data], WANT);
  // COLOR4: two pixels a byte, high nibble first, rows padded to a byte (3 px → 2 bytes).
  const idx4 = [[1, 2, 0], [3, 15, 0]];
  const c4 = [...idx4.flatMap((row) => [(row[0]! << 4) | row[1]!, row[2]! << 4]), ...palette(16), ...maskRows(AND)];
  assert.deepEqual([...decodeCursorImage(CursorType.COLOR4, 3, 2, Uint8Array.from(c4), MAX).data], WANT);
  assert.throws(() => decodeCursorImage(CursorType.COLOR8, 3, 2, Uint8Array.from(c8.slice(0, -1)), MAX), /truncated/);
});

function channel(): { wire: FakeWire; cursor: CursorChannel; done: Promise<void>; error: () => Error | undefined } {
  const wire = new FakeWire();
  const cursor = new CursorChannel(
    4,
    0,
    wire.transport,
    wire.queue,
    { maxMessageSize: 1 << 20, lookup: () => undefined },
    MAX,
  );
  let err: Error | undefined;
  cursor.onClose((e) => (err = e));
  const done = cursor.run();
  return { wire, cursor, done, error: () => (err instanceof SpiceConnectionClosed ? undefined : err) };
}

/** A SET message with a 1×1 COLOR32 shape (flags: 2 CACHE_ME, 4 FROM_CACHE). */
function set(flags: number, unique: number, rgb: [number, number, number] = [1, 2, 3]): Uint8Array {
  const w = new Writer().u16(0).u16(0).u8(1).u16(flags).u64(unique).u8(CursorType.COLOR32).u16(1).u16(1).u16(0).u16(0);
  if (!(flags & 4)) w.bytes(Uint8Array.of(rgb[2], rgb[1], rgb[0], 0, 0));
  return w.finish();
}

test('cursor cache: INVAL_ONE and INVAL_ALL evict; a shape not in the cache is a typed error', async () => {
  const c = channel();
  c.wire.push(CursorMsg.SET, set(2, 7, [9, 8, 7]));
  c.wire.push(CursorMsg.SET, set(2, 8));
  c.wire.push(CursorMsg.SET, set(4, 7));
  await tick();
  assert.deepEqual([...c.cursor.state.shape!.image.data], [9, 8, 7, 255]);
  c.wire.push(CursorMsg.INVAL_ONE, new Writer().u64(7).finish());
  c.wire.push(CursorMsg.SET, set(4, 8)); // 8 still cached
  await tick();
  assert.equal(c.error(), undefined);
  c.wire.push(CursorMsg.INVAL_ALL);
  c.wire.push(CursorMsg.SET, set(4, 8));
  await c.done;
  assert.ok(c.error() instanceof SpiceProtocolError, String(c.error()));
  assert.match(c.error()!.message, /not in cache/);
});

test('cursor cache: RESET and INIT empty it; it keeps the server\'s 256 newest shapes', async () => {
  for (const clear of [CursorMsg.RESET, CursorMsg.INIT]) {
    const c = channel();
    c.wire.push(CursorMsg.SET, set(2, 1));
    const init = new Writer().u16(0).u16(0).u16(0).u16(0).u8(1).u16(1).finish(); // INIT with flags NONE
    c.wire.push(clear, clear === CursorMsg.INIT ? init : new Uint8Array(0));
    c.wire.push(CursorMsg.SET, set(4, 1));
    await c.done;
    assert.match(String(c.error()), /not in cache/, `after ${clear}`);
  }
  const c = channel();
  for (let i = 0; i < 257; i++) c.wire.push(CursorMsg.SET, set(2, i));
  c.wire.push(CursorMsg.SET, set(4, 256));
  c.wire.push(CursorMsg.SET, set(4, 1));
  await tick();
  assert.equal(c.error(), undefined);
  c.wire.push(CursorMsg.SET, set(4, 0)); // the oldest went out
  await c.done;
  assert.match(String(c.error()), /not in cache/);
});

test('fuzz: cursor shapes of every type and random cursor messages end in typed errors', async () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 9 }),
      fc.integer({ min: 0, max: 40 }),
      fc.integer({ min: 0, max: 40 }),
      fc.uint8Array({ maxLength: 3000 }),
      (type, w, h, data) => {
      typed(() => decodeCursorImage(type, w, h, data, MAX));
    },
    ),
    { numRuns: 3000 },
  );
  // Oversized claims fail before allocating.
  assert.throws(() => decodeCursorImage(CursorType.COLOR8, 65535, 65535, new Uint8Array(10), MAX), /exceeds the limit/);
  const msg = fc.tuple(fc.constantFrom(101, 102, 103, 104, 105, 106, 107, 108), fc.uint8Array({ maxLength: 120 }));
  await fc.assert(
    fc.asyncProperty(fc.array(msg, { maxLength: 10 }), async (msgs) => {
      const c = channel();
      for (const [t, b] of msgs) c.wire.push(t, b);
      c.wire.queue.closed();
      await c.done;
      const e = c.error();
      if (e) assert.ok(e instanceof SpiceProtocolError, String(e));
    }),
    { numRuns: 500 },
  );
});
