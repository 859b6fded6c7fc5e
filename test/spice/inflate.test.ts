// src/spice-node/inflate.ts, node:zlib in fflate's place in the command's bundles, against fflate itself on what
// src/spice/codecs/zlib-glz.ts asks of it: the same bytes for a stream, an error where fflate has one (more than
// `out` holds, a corrupt or truncated stream).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { unzlibSync as fflate } from 'fflate';
import { unzlibSync as native } from '../../src/spice-node/inflate.ts';

const data = new Uint8Array(50_000).map((_, i) => (i % 300 < 200 ? 7 : (i * 2654435761) >>> 24));
const z = new Uint8Array(deflateSync(data));

const outcome = (f: () => Uint8Array) => {
  try {
    return { bytes: f() };
  } catch {
    return { error: true };
  }
};

test('a zlib stream inflates to the same bytes, with and without an output size', () => {
  assert.deepEqual(native(z), fflate(z));
  assert.deepEqual(native(z, { out: new Uint8Array(data.length) }), data);
  assert.deepEqual(fflate(z, { out: new Uint8Array(data.length) }), data);
});

test('more than `out` holds, a corrupt stream and a truncated one are errors for both', () => {
  const corrupt = z.slice();
  corrupt[0] = 0x00; // not a zlib header
  const cases: [string, (u: typeof native) => Uint8Array][] = [
    ['too small', (u) => u(z, { out: new Uint8Array(data.length - 1) })],
    ['corrupt', (u) => u(corrupt)],
    ['truncated', (u) => u(z.subarray(0, z.length >> 1))],
  ];
  for (const [name, run] of cases) {
    const a = outcome(() => run(native));
    const b = outcome(() => run(fflate));
    assert.ok(a.error, `${name}: node:zlib gives an error`);
    // fflate may return short output instead of an error; zlib-glz.ts refuses that by its length check.
    assert.ok(b.error || b.bytes!.length !== data.length, `${name}: fflate refuses too`);
  }
});
