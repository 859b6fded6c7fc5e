#!/usr/bin/env node
// Runs the suite with node's test runner (TypeScript through tsx), and prints each file's time at the end.
// Files run one after another: many start real QEMU guests, and this machine has two cores.
// Usage: node scripts/run-tests.js [--unit] [path-filter ...]
//   --unit   only the files that need no QEMU, no browser and no server (the fast tier, `npm run test:unit`)
//   test/soak/ (long repetitions, e.g. ten desktop boots) runs only when a filter names it.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

// A test file is end-to-end when it reaches a real server, guest, image or browser: through these helpers, or by
// naming QEMU, Chromium or spicy directly. Everything else is the unit tier.
const E2E_MARKS = [
  /helpers\/(server|images|desktop|qemu|tiny-guest|desktop-guest|relay)\.ts|from '\.\/helpers\.ts'/,
  /playwright-core|chromium|qemu-system|qemu-img|spicy/,
];
const isE2e = (file) => E2E_MARKS.some((re) => re.test(readFileSync(file, 'utf8')));

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const args = process.argv.slice(2);
const unit = args.includes('--unit');
const filters = args.filter((a) => a !== '--unit');
const files = find('test')
  .filter((f) => (filters.length === 0 ? !f.startsWith(join('test', 'soak')) : filters.some((x) => f.includes(x))))
  .filter((f) => !unit || !isE2e(f));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const reporters = ['--test-reporter=spec', '--test-reporter-destination=stdout',
  '--test-reporter=./scripts/durations-reporter.js', '--test-reporter-destination=stdout'];
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', ...reporters, ...files],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);
