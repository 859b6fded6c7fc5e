// `oriel console audio` refuses bad words before connecting: a file that is not 16-bit PCM WAV, a --seconds that
// is not a duration, and an unreachable target, each with a clear message and exit status 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeWav } from '../../src/spice/audio/wav.ts';

const BIN = join(import.meta.dirname, '../../bin/oriel.js');
const oriel = (args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ORIEL_TOKEN: '' } });

test('console audio: bad files, durations and targets are clear errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oca-args-'));
  try {
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'not a sound');
    let r = oriel(['console', 'audio', 'play', 'spice+unix:///nonexistent.sock', text]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /notes\.txt: not a WAV file/);
    const wav8 = join(dir, 'eight-bit.wav');
    const bytes = encodeWav({ samples: new Int16Array(100), channels: 1, rate: 8000 });
    new DataView(bytes.buffer).setUint16(34, 8, true);
    writeFileSync(wav8, bytes);
    r = oriel(['console', 'audio', 'play', 'spice+unix:///nonexistent.sock', wav8]);
    assert.match(r.stderr, /only 16-bit PCM is supported/);
    for (const bad of ['abc', '0', '-1', '99999']) {
      r = oriel(['console', 'audio', 'record', 'spice+unix:///nonexistent.sock', join(dir, 'o.wav'), '--seconds', bad]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /--seconds takes a number of seconds/, bad);
    }
    r = oriel(['console', 'audio', 'record', 'spice+unix:///nonexistent.sock', join(dir, 'o.wav'), '--seconds', '1']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot connect to spice\+unix:\/\/\/nonexistent\.sock \(ENOENT\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
