// Configuration from the environment is checked before the server starts: a typo is a message, not a surprise later.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { configProblems, defaultConfig } from '../src/config.ts';

test('bad values of ORIEL_* are each named with what is accepted', () => {
  assert.deepEqual(configProblems(defaultConfig({})), []);
  const bad = configProblems(defaultConfig({ ORIEL_ACCEL: 'KVM', ORIEL_STOP_TIMEOUT: 'abc', ORIEL_PORT: '99999', ORIEL_LOG_LEVEL: 'loud' }));
  assert.equal(bad.length, 4, bad.join('\n'));
  assert.match(bad.join('\n'), /must be auto, kvm or tcg, not 'KVM'/);
  assert.match(bad.join('\n'), /ORIEL_STOP_TIMEOUT must be a number of seconds/);
  assert.match(bad.join('\n'), /port .* must be a whole number/);
  assert.match(bad.join('\n'), /ORIEL_LOG_LEVEL must be one of/);
  // Numbers are plain decimals: blanks, hex and exponents are refused rather than read as 0, 16 or 1000.
  for (const v of [' ', '0x10', '1e3', '-5', '30s']) {
    const p = configProblems(defaultConfig({ ORIEL_STOP_TIMEOUT: v, ORIEL_PORT: v }));
    assert.equal(p.length, 2, `${JSON.stringify(v)}: ${p.join('\n')}`);
  }
  assert.equal(defaultConfig({ ORIEL_STOP_TIMEOUT: '2.5' }).stopTimeoutSec, 2.5);
  assert.equal(defaultConfig({ ORIEL_STOP_TIMEOUT: '' }).stopTimeoutSec, 30);
  const exposed = configProblems(defaultConfig({ ORIEL_DATA_DIR: '/srv/oriel/data', ORIEL_IMAGES_DIRS: '/srv/oriel' }));
  assert.match(exposed.join('\n'), /image folder \/srv\/oriel holds Oriel's data or cache directory/);
});

test('oriel serve refuses to start on a bad value, before touching anything', () => {
  const r = spawnSync(process.execPath, ['bin/oriel.js', 'serve', '--data-dir', '/nonexistent/never-created'], {
    env: { ...process.env, ORIEL_ACCEL: 'KVM', ORIEL_STOP_TIMEOUT: 'abc' }, encoding: 'utf8', timeout: 30_000,
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /must be auto, kvm or tcg, not 'KVM'/);
  assert.match(r.stderr, /ORIEL_STOP_TIMEOUT must be a number of seconds from 0 to 3600, not 'abc'/);
});

test('oriel serve refuses a bad ORIEL_CHECKPOINT_PAUSE at start, not first at the next checkpoint', () => {
  const dataDir = '/nonexistent/never-created-pause';
  const r = spawnSync(process.execPath, ['bin/oriel.js', 'serve', '--data-dir', dataDir], {
    env: { ...process.env, ORIEL_CHECKPOINT_PAUSE: 'fast' }, encoding: 'utf8', timeout: 30_000,
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /ORIEL_CHECKPOINT_PAUSE is 'fast': it must be 'auto' \(the default\) or 'background'/);
  assert.equal(existsSync(dataDir), false);
});
