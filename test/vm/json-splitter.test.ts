// The guest agent's stream splitter against what a hostile guest can send: it must stay linear and bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonSplitter, QGA_DELIM } from '../../src/vm/json-splitter.ts';

test('objects split at balanced braces, strings respected, 0xFF drops what came before, any chunking', () => {
  const stream = Buffer.concat([
    Buffer.from('junk {"return": {"a": "} {"}}\n{"partial": '),
    Buffer.from([QGA_DELIM]),
    Buffer.from('{"return": 7}\n{"s": "esc \\" }"}'),
  ]);
  for (const size of [1, 2, 3, 7, stream.length]) {
    const out: string[] = [];
    const s = new JsonSplitter((t) => out.push(t));
    for (let i = 0; i < stream.length; i += size) s.push(stream.subarray(i, i + size));
    assert.deepEqual(out.map((t) => JSON.parse(t)), [{ return: { a: '} {' } }, { return: 7 }, { s: 'esc " }' }], `chunks of ${size}`);
  }
});

test('a message that never ends costs one pass and no memory past the limit; the next one still arrives', () => {
  const out: string[] = [];
  const s = new JsonSplitter((t) => out.push(t), 1 << 20);
  const chunk = Buffer.alloc(64 * 1024, 0x61); // "aaaa...": inside an object that never closes
  s.push(Buffer.from('{"x": "'));
  const t0 = Date.now();
  for (let i = 0; i < 2048; i++) s.push(chunk); // 128 MiB
  const ms = Date.now() - t0;
  assert.ok(ms < 5000, `128 MiB scanned in ${ms} ms`);
  s.push(Buffer.from('"}{"after": 1}'));
  assert.deepEqual(out, ['{"after": 1}'], 'the oversized message is skipped, the next one delivered');
});
