// withSpares (src/spice-node/spare-connector.ts): the next connection is opened while the first is in use, handed
// to the next channel, at most `spares` of them, and an unused spare is closed on dispose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Transport } from '../../src/spice/index.ts';
import { withSpares } from '../../src/spice-node/spare-connector.ts';

function fakeConnector() {
  const made: { id: number; closed: boolean }[] = [];
  const connect = async (): Promise<Transport> => {
    const rec = { id: made.length, closed: false };
    made.push(rec);
    return { start() {}, write() {}, close: () => void (rec.closed = true), id: rec.id } as Transport & { id: number };
  };
  return { made, connect };
}

test('one spare: opened with the first connection, taken by the second, none after', async () => {
  const f = fakeConnector();
  const s = withSpares(f.connect, 1);
  const a = (await s.connect(1, 0)) as Transport & { id: number };
  assert.equal(f.made.length, 2, 'the spare is opened at once');
  const b = (await s.connect(2, 0)) as Transport & { id: number };
  assert.deepEqual([a.id, b.id], [0, 1]);
  assert.equal(f.made.length, 2, 'the second channel took the spare');
  await s.connect(3, 0);
  assert.equal(f.made.length, 3, 'no spare beyond the count');
  s.dispose();
  assert.ok(f.made.every((m) => !m.closed), 'connections in use are not closed');
});

test('an unused spare is closed on dispose; no spares with a count of 0', async () => {
  const f = fakeConnector();
  const s = withSpares(f.connect, 1);
  await s.connect(1, 0);
  s.dispose();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(f.made.map((m) => m.closed), [false, true]);
  const g = fakeConnector();
  await withSpares(g.connect, 0).connect(1, 0);
  assert.equal(g.made.length, 1);
});
