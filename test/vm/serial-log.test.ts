// The serial log's cap (src/vm/serial-log.ts): rotated to serial.log.1 once over the cap, emptied in place (so a
// writer holding it open with O_APPEND goes on at the start), and read back across both files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capLog, lastBytes, previousLog } from '../../src/vm/serial-log.ts';
import { tail } from '../../src/vm/serial-log.ts';

test('a log over its cap moves to .1 and starts again empty; a log under it is left alone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oslog-'));
  try {
    const log = join(dir, 'serial.log');
    assert.equal(capLog(log, 100), false, 'no file yet');
    appendFileSync(log, 'a'.repeat(100));
    assert.equal(capLog(log, 100), false);
    assert.equal(statSync(log).size, 100);
    // A writer like QEMU's: one O_APPEND descriptor kept open across the rotation.
    const fd = openSync(log, 'a');
    writeSync(fd, 'b'.repeat(50) + '\n');
    assert.equal(capLog(log, 100), true);
    assert.equal(statSync(log).size, 0);
    assert.equal(readFileSync(previousLog(log), 'utf8'), 'a'.repeat(100) + 'b'.repeat(50) + '\n');
    writeSync(fd, 'latest line\n');
    closeSync(fd);
    assert.equal(readFileSync(log, 'utf8'), 'latest line\n', 'the writer goes on at the start, no hole before it');
    // Read across both files.
    assert.equal(lastBytes(log, 20).toString(), 'bbbbbbb\nlatest line\n');
    assert.equal(lastBytes(log, 5).toString(), 'line\n');
    assert.equal(lastBytes(log, 10_000).length, 151 + 12);
    assert.equal(tail(log, 2), 'a'.repeat(100) + 'b'.repeat(50) + '\nlatest line');
    // A second rotation replaces serial.log.1.
    appendFileSync(log, 'c'.repeat(200));
    assert.equal(capLog(log, 100), true);
    assert.equal(readFileSync(previousLog(log), 'utf8'), 'latest line\n' + 'c'.repeat(200));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lastBytes of a log that is not there is empty', () => {
  assert.equal(lastBytes(join(tmpdir(), 'no-such-dir-oriel', 'serial.log'), 100).length, 0);
  assert.equal(existsSync(join(tmpdir(), 'no-such-dir-oriel')), false);
});
