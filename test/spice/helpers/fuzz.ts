// Shared by the codec tests: byte builders and the rule every fuzzed decoder must keep.
import assert from 'node:assert/strict';
import { SpiceProtocolError } from '../../../src/spice/index.ts';

/** Big-endian 32-bit words as bytes (SPICE image headers such as LZ's are big-endian). */
export function be32(...words: number[]): number[] {
  return words.flatMap((w) => [(w >>> 24) & 255, (w >>> 16) & 255, (w >>> 8) & 255, w & 255]);
}

/** Runs `fn`: it may succeed, but if it throws, the error must be a typed protocol error. */
export function typed(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SpiceProtocolError, `${(e as Error).name}: ${(e as Error).message}`);
  }
}
