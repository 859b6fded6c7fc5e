// HelperLog (src/remoting/helper-log.ts): an OpenCL helper's log under its cap, and the pause after each rotation.
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HelperLog } from '../../src/remoting/helper-log.ts';

const dir = mkdtempSync(join(tmpdir(), 'oriel-helper-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('past its cap the log becomes .1, and its streams are paused for a second, then resumed', async () => {
  const path = join(dir, 'a.log');
  const log = new HelperLog(path, 1000);
  const s = new PassThrough();
  log.follow(s);
  s.write(Buffer.alloc(800, 0x61));
  await sleep(10);
  const t0 = Date.now();
  s.write(Buffer.alloc(800, 0x62));
  await sleep(10);
  assert.equal(s.isPaused(), true, 'paused after the rotation');
  assert.equal(statSync(`${path}.1`).size, 800);
  assert.equal(readFileSync(path, 'latin1'), 'b'.repeat(800));
  for (let i = 0; i < 40 && s.isPaused(); i++) await sleep(50);
  assert.equal(s.isPaused(), false, 'resumed within 2 s of the rotation');
  assert.ok(Date.now() - t0 >= 900, 'not before its second');
  log.close();
});

test('every pause ends, whatever the clocks: 40 rotations at once resume their streams', async () => {
  // A timer fires by the loop's monotonic clock in whole milliseconds: about one in twenty fires a millisecond before
  // Date.now() says its delay is over. A log that checked "now >= deadline" then left its streams paused for good.
  const logs = Array.from({ length: 40 }, (_, i) => {
    const log = new HelperLog(join(dir, `c${i}.log`), 100);
    const s = new PassThrough();
    log.follow(s);
    return { log, s };
  });
  for (const { log } of logs) {
    await sleep(Math.random() * 20);
    log.write(Buffer.alloc(80));
    log.write(Buffer.alloc(80));
  }
  await sleep(1300);
  assert.deepEqual(logs.map(({ s }) => s.isPaused()).filter(Boolean), []);
  for (const { log } of logs) log.close();
});

test('a second rotation within the pause keeps the streams paused until its own second is over', async () => {
  const path = join(dir, 'b.log');
  const log = new HelperLog(path, 100);
  const s = new PassThrough();
  log.follow(s);
  log.write(Buffer.alloc(80));
  log.write(Buffer.alloc(80)); // rotation 1
  await sleep(500);
  log.write(Buffer.alloc(80)); // rotation 2
  await sleep(700); // rotation 1's second is over, rotation 2's is not
  assert.equal(s.isPaused(), true);
  for (let i = 0; i < 40 && s.isPaused(); i++) await sleep(50);
  assert.equal(s.isPaused(), false);
  log.close();
});
