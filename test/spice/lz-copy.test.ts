// copyUnits (lz-core.ts, shared by LZ and GLZ): its native-copy paths against the byte-by-byte definition,
// front-to-back copies where an overlap repeats the units before the destination.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LzType, copyUnits } from '../../src/spice/codecs/lz-core.ts';

/** The definition: unit by unit, front to back. */
function reference(out: Uint8Array, from: number, to: number, len: number, mode: number): void {
  const unit = mode === LzType.PLT8 ? 1 : 4;
  for (let i = 0; i < len; i++) {
    for (let b = 0; b < unit; b++) {
      if (mode === LzType.XXXA && b !== 3) continue;
      out[(to + i) * unit + b] = out[(from + i) * unit + b]!;
    }
  }
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

test('copyUnits matches the unit-by-unit copy: overlapping, adjacent, distant, short and long runs', () => {
  const rnd = seeded(7);
  let overlapping = 0;
  for (const mode of [LzType.RGB32, LzType.PLT8, LzType.XXXA]) {
    for (let round = 0; round < 400; round++) {
      const units = 3000;
      const a = new Uint8Array(units * 4);
      for (let i = 0; i < a.length; i++) a[i] = Math.floor(rnd() * 256);
      const b = a.slice();
      const from = Math.floor(rnd() * 1000);
      const dist = 1 + Math.floor(rnd() * (round % 3 === 0 ? 4 : 600));
      const to = Math.min(from + dist, units - 1);
      const len = 1 + Math.floor(rnd() * (units - to - 1));
      if (to - from < len) overlapping++;
      copyUnits(a, from, to, len, mode);
      reference(b, from, to, len, mode);
      assert.deepEqual(a, b, `mode ${mode} from ${from} to ${to} len ${len}`);
    }
  }
  assert.ok(overlapping > 300, `only ${overlapping} overlapping copies were tried`);
});

test('copyUnits repeats one pixel over a long run (a flat screen area)', () => {
  const px = [10, 20, 30, 0];
  const out = new Uint8Array(4 * 5000);
  out.set(px, 0);
  copyUnits(out, 0, 1, 4999, LzType.RGB32);
  for (let i = 0; i < 5000; i++) assert.deepEqual([...out.subarray(i * 4, i * 4 + 4)], px, `pixel ${i}`);
});
