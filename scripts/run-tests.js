#!/usr/bin/env node
// Runs the suite with node's test runner (TypeScript through tsx) in two lanes side by side, and prints each
// file's time at the end. Within a lane files run one after another. The heavy lane holds the files that boot the
// desktop guest (it takes most of both cores, so two never overlap) and the checkpoint crash test (the longest of the
// rest); the light lane holds the rest (tiny guests, servers, browsers, the unit tier), which mostly wait on I/O and
// timers. The two lanes take about the same time here.
// Usage: node scripts/run-tests.js [--unit | --e2e] [--serial] [path-filter ...]
//   --unit    only the files that need no QEMU, no browser and no server (the fast tier, `npm run test:unit`)
//   --e2e     only the others: real guests, servers, browsers, peers (`npm run test:e2e`)
//   --serial  one lane: every file one after another
//   test/soak/ (long repetitions, e.g. ten desktop boots) runs only when a filter names it.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

// A test file is end-to-end when it reaches a real server, guest, image or browser: through these helpers, or by
// naming QEMU, Chromium or spicy directly. Everything else is the unit tier.
const E2E_MARKS = [
  /helpers\/(server|images|desktop|qemu|tiny-guest|desktop-guest|relay)\.ts|from '\.\/helpers\.ts'/,
  /playwright-core|chromium|qemu-system|qemu-img|spicy/,
];
const HEAVY_MARKS = [/ensureDesktopImage|helpers\/desktop(-guest)?\.ts|startDesktop(Vm|Guest)/, /^test\/checkpoint\/crash\./];
const text = (file) => readFileSync(file, 'utf8');
const isE2e = (file) => E2E_MARKS.some((re) => re.test(text(file)));
const isHeavy = (file) => HEAVY_MARKS.some((re) => re.test(re.source.startsWith('^') ? file : text(file)));

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
const e2e = args.includes('--e2e');
const serial = args.includes('--serial');
const filters = args.filter((a) => !a.startsWith('--'));
const files = find('test')
  .filter((f) => (filters.length === 0 ? !f.startsWith(join('test', 'soak')) : filters.some((x) => f.includes(x))))
  .filter((f) => (!unit || !isE2e(f)) && (!e2e || isE2e(f)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

const reporters = ['--test-reporter=spec', '--test-reporter-destination=stdout',
  '--test-reporter=./scripts/durations-reporter.js', '--test-reporter-destination=stdout'];

/** Runs one lane's files one after another; its lines are prefixed with the lane's name when two lanes run. */
function lane(name, laneFiles, prefix) {
  return new Promise((resolve) => {
    if (laneFiles.length === 0) { resolve(0); return; }
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...reporters,
      ...laneFiles], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ORIEL_TEST_LANE: name } });
    for (const stream of [child.stdout, child.stderr]) {
      const out = stream === child.stdout ? process.stdout : process.stderr;
      createInterface({ input: stream }).on('line', (l) => out.write(prefix ? `[${name}] ${l}\n` : `${l}\n`));
    }
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const started = Date.now();
const heavy = serial ? [] : files.filter(isHeavy);
const light = files.filter((f) => !heavy.includes(f));
const two = heavy.length > 0 && light.length > 0;
const codes = await Promise.all([lane('heavy', heavy, two), lane('light', light, two)]);
console.log(`\nsuite wall time: ${((Date.now() - started) / 60000).toFixed(1)} min` +
  (two ? ` (two lanes: ${heavy.length} heavy files, ${light.length} light)` : ''));
process.exit(codes.some((c) => c !== 0) ? 1 : 0);
