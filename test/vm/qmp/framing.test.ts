// Line framing of QMP output: CRLF-terminated JSON objects arriving in arbitrary chunks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter } from '../../../src/vm/qmp/framing.ts';

const text = '{"QMP": {"version": {}}}\r\n{"return": {}, "id": 1}\r\n\r\n{"event": "STOP"}\r\n';
const lines = ['{"QMP": {"version": {}}}\r', '{"return": {}, "id": 1}\r', '{"event": "STOP"}\r'];

test('several lines in one chunk; blank lines skipped', () => {
  assert.deepEqual(new LineSplitter().push(text), lines);
});

test('the same stream one character at a time, and in every two-piece split', () => {
  const s = new LineSplitter();
  assert.deepEqual([...text].flatMap((c) => s.push(c)), lines);
  for (let i = 0; i <= text.length; i++) {
    const t = new LineSplitter();
    assert.deepEqual([...t.push(text.slice(0, i)), ...t.push(text.slice(i))], lines, `split at ${i}`);
  }
});

test('a partial line waits for its end; a large line in many chunks comes out whole', () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push('{"return": '), []);
  const big = JSON.stringify('x'.repeat(1_000_000));
  for (let i = 0; i < big.length; i += 4096) assert.deepEqual(s.push(big.slice(i, i + 4096)), []);
  assert.deepEqual(s.push(', "id": 7}\r\n{"ev'), [`{"return": ${big}, "id": 7}\r`]);
  assert.deepEqual(s.push('ent": "X"}\r\n'), ['{"event": "X"}\r']);
});
