// How many restores run at once: one per user, `total` for the server, the others in the order they asked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RestoreSlots } from '../../src/checkpoint/restore-slots.ts';

const tick = () => new Promise((r) => setImmediate(r));

test('restore slots: one per user, two for the server; waiters start in order as slots come back', async () => {
  const slots = new RestoreSlots(2, 1);
  const started: string[] = [];
  const waited: number[] = [];
  const ask = (who: string, tag: string) =>
    slots.acquire(who, (n) => waited.push(n)).then((release) => { started.push(tag); return release; });
  const a1 = ask('alice', 'a1');
  const a2 = ask('alice', 'a2'); // alice's second waits for her first
  const b1 = ask('bob', 'b1');
  const c1 = ask('carol', 'c1'); // the server's two are taken
  const b2 = ask('bob', 'b2');
  await tick();
  assert.deepEqual(started, ['a1', 'b1']);
  assert.deepEqual(waited, [1, 2, 2]);
  const releaseB1 = await b1;
  releaseB1();
  releaseB1(); // a second call gives nothing back twice
  await tick();
  // carol asked before bob's second: she goes first; alice still runs one
  assert.deepEqual(started, ['a1', 'b1', 'c1']);
  (await a1)();
  await tick();
  assert.deepEqual(started, ['a1', 'b1', 'c1', 'a2']);
  (await c1)();
  await tick();
  assert.deepEqual(started, ['a1', 'b1', 'c1', 'a2', 'b2']);
  (await a2)();
  (await b2)();
  const again = await slots.acquire('alice'); // all given back: no wait
  again();
});
