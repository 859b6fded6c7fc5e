#!/usr/bin/env node
// Runs the whole suite with node's test runner (TypeScript through tsx).
// Files run one after another: many start real QEMU guests, and this machine has two cores.
// Usage: node scripts/run-tests.js [path-filter ...]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
// test/soak/ (long repetitions, e.g. ten desktop boots) runs only when a filter names it.
const files = find('test').filter((f) =>
  filters.length === 0 ? !f.startsWith(join('test', 'soak')) : filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
