// Failure artefacts (helpers/artifacts.ts): a failing test leaves its VMs' logs in test-artifacts/<file>/<test>/,
// whether its data directory is still there or the test cleaned it up in `finally`; a passing test leaves nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const OUT = join(ROOT, 'test-artifacts', 'fixtures', 'artifacts', 'two-tests.ts');

// Without the runner's own variable, so the child reports (and exits) as a test run of its own.
const { NODE_TEST_CONTEXT: _, ...childEnv } = process.env;

test('a failing test keeps its VMs\' logs, a passing one does not', () => {
  rmSync(OUT, { recursive: true, force: true });
  try {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec',
      'test/fixtures/artifacts/two-tests.ts'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: childEnv });
    assert.notEqual(r.status, 0, 'two of its tests fail');
    assert.match(r.stdout + r.stderr, /test artefacts of 'fails while its data directory is still there' kept in/);
    assert.deepEqual(readdirSync(OUT).sort(), [
      'fails_after_cleaning_up_in_finally', 'fails_while_its_data_directory_is_still_there',
    ]);
    for (const [name, tag] of [['fails_while_its_data_directory_is_still_there', 'aa'],
      ['fails_after_cleaning_up_in_finally', 'bb']]) {
      const vm = join(OUT, name!, `0000000000${tag}`);
      // The logs only (not the disk), and every data directory still there: the first test's is, for the second.
      assert.deepEqual(readdirSync(vm).sort(), ['qemu.log', 'qmp-transcript.log', 'serial.log']);
      assert.equal(readFileSync(join(vm, 'serial.log'), 'utf8'), `console of ${tag}\n`);
    }
    assert.deepEqual(readdirSync(join(OUT, 'fails_after_cleaning_up_in_finally')).sort(),
      ['0000000000aa', '0000000000bb']);
    // Nothing of the passing test, and no stage left behind.
    assert.equal(existsSync(join(ROOT, 'test-artifacts', '.pending', String(r.pid))), false);
  } finally {
    rmSync(join(ROOT, 'test-artifacts', 'fixtures'), { recursive: true, force: true });
  }
});
