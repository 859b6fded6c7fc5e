// Operations at a server's close (src/server/operations.ts): close drains the ones still running, and one that ends
// after the database is closed ends quietly (the next server marks it failed), with no unhandled rejection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openDatabase } from '../../src/db/database.ts';
import { Operations } from '../../src/server/operations.ts';

test('drain waits for running operations; one ending after the database closed writes nothing and throws nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'oriel-ops-'));
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    const db = openDatabase(join(dir, 'oriel.db'));
    const ops = new Operations(db);
    const quick = ops.start('checkpoint', {}, async (ctx) => {
      await sleep(300);
      ctx.progress(1, 1, 'done');
      return { id: 'a' };
    });
    const t0 = Date.now();
    await ops.drain(5000);
    assert.ok(Date.now() - t0 >= 250, 'drain waited for it');
    assert.equal(ops.get(quick.id).status, 'succeeded');
    // One that outlives the bound: drain gives up, the database closes, the operation then ends (and fails).
    const slow = ops.start('restore', {}, async (ctx) => {
      await sleep(400);
      ctx.log('late');
      throw new Error('too late');
    });
    const waiting = ops.wait(slow.id, 200);
    const t1 = Date.now();
    await ops.drain(100);
    assert.ok(Date.now() - t1 < 300, 'drain is bounded');
    db.close();
    assert.equal((await waiting).status, 'running', "a waiter's timeout after the close answers what it last knew");
    await sleep(600);
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    rmSync(dir, { recursive: true, force: true });
  }
});
