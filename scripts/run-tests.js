#!/usr/bin/env node
// Runs the suite with node's test runner (TypeScript through tsx) on two workers that take files from one queue, and
// prints each file's time and the suite's wall time at the end. Heavy files (those that start the desktop guest,
// which takes most of both cores) never run beside each other; the rest (tiny guests, servers, browsers) mostly wait
// on I/O and timers and run beside anything. The queue starts with the heavy files,
// then the others, each group longest first by the times of the last run on this machine (kept in the cache
// folder), so that both workers end together. The unit tier shares one process (scripts/unit-tier.js): each file
// would otherwise pay a node start and a TypeScript load, a few seconds apiece on a busy machine.
// Usage: node scripts/run-tests.js [--unit | --e2e] [--serial] [path-filter ...]
//   --unit    only the files that need no QEMU, no browser and no server (the fast tier, `npm run test:unit`)
//   --e2e     only the others: real guests, servers, browsers, peers (`npm run test:e2e`)
//   --serial  one worker: every file one after another
//   test/soak/ (long repetitions, e.g. ten desktop boots) runs only when a filter names it.
// A hang fails its file instead of the whole run: a file still running after FILE_TIMEOUT_MS (20 min; the slowest
// takes ~1.5; ORIEL_TEST_FILE_TIMEOUT_MIN, 0: none) is ended with all its processes, after their list (with the
// kernel wait of each) and each node process's open handles are printed (scripts/hang-report.js).
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { endHungJob, endOnInterrupt, REPORT_DIR } from './hang-report.js';

// A test file is end-to-end when it reaches a real server, guest, image or browser: through these helpers, or by
// naming QEMU, Chromium or spicy directly. Everything else is the unit tier.
const E2E_MARKS = [
  /helpers\/(server|images|desktop|qemu|tiny-guest|desktop-guest|relay)\.ts|qmp\/helpers\.ts|from '\.\/helpers\.ts'/,
  /playwright-core|chromium|qemu-system|qemu-img|spicy/,
];
const HEAVY_MARKS = [/ensureDesktopImage|helpers\/desktop(-guest)?\.ts|startDesktop(Vm|Guest)/];
const text = (file) => readFileSync(file, 'utf8');
const isE2e = (file) => E2E_MARKS.some((re) => re.test(text(file)));
const isHeavy = (file) => HEAVY_MARKS.some((re) => re.test(text(file)));

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

const TIMES = join(process.env.ORIEL_CACHE_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'oriel'),
  'test-times.json');
const lastTimes = (() => { try { return JSON.parse(readFileSync(TIMES, 'utf8')); } catch { return {}; } })();
const UNIT = 'the unit tier';
const unitFiles = files.filter((f) => !isE2e(f));
const jobs = [
  ...files.filter((f) => isE2e(f)).map((f) => ({ name: f, files: [f], heavy: !serial && isHeavy(f) })),
  ...(unitFiles.length > 0 ? [{ name: UNIT, files: unitFiles, heavy: false }] : []),
];
const guess = (j) => lastTimes[j.name] ?? (j.heavy ? 120_000 : 20_000);
jobs.sort((a, b) => Number(b.heavy) - Number(a.heavy) || guess(b) - guess(a));

const reporters = ['--test-reporter=spec', '--test-reporter-destination=stdout'];
const minutes = (name, dflt) => Number(process.env[name] || dflt) * 60_000;
const FILE_TIMEOUT_MS = minutes('ORIEL_TEST_FILE_TIMEOUT_MIN', 20);
const soak = (job) => job.files.some((f) => f.startsWith(join('test', 'soak')));
const SUMMARY = /^ℹ (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ([\d.]+)$/;
const totals = {};
// node's spec reporter ends each process with a "✖ failing tests:" section; those sections are printed again after
// the suite, so the end of a long CI log (often all one sees of it) names what failed and why.
const FAILING = /^✖ failing tests:/;
// An error after its test ended ("generated asynchronous activity after the test ended") fails the file, but is
// said only before that section.
const ASYNC_ERROR = /^ℹ Error: /;
const failures = [];

/** Jobs running now: their node process → their mark (ORIEL_TEST_JOB, which every process of theirs inherits). */
const running = new Map();
endOnInterrupt(running);
let jobNumber = 0;

/** Runs one job in a node process; its lines are prefixed with the worker's name, its summary lines added up. */
function run(worker, job, prefix) {
  const argv = job.name === UNIT
    ? ['--import', 'tsx', ...reporters, 'scripts/unit-tier.js', ...job.files]
    : ['--import', 'tsx', '--test', ...reporters, ...job.files];
  if (prefix) console.log(`[${worker}] ── ${job.name}`);
  return new Promise((resolve) => {
    let failing = false;
    let hung = false;
    const mine = []; // this job's failing section, added whole when it ends (jobs run side by side)
    const mark = `${process.pid}.${++jobNumber}`;
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], detached: true,
      env: { ...process.env, ORIEL_TEST_LANE: worker, ORIEL_TEST_JOB: mark,
        NODE_OPTIONS: [process.env.NODE_OPTIONS, '--report-on-signal', '--report-signal=SIGUSR2',
          `--report-directory=${JSON.stringify(REPORT_DIR)}`].filter(Boolean).join(' ') } });
    running.set(child, mark);
    const watchdog = soak(job) || FILE_TIMEOUT_MS <= 0 ? undefined : setTimeout(() => {
      hung = true;
      const said = endHungJob(child.pid, mark, `${job.name} still running after ${FILE_TIMEOUT_MS / 60_000} min`);
      mine.push(...said.slice(0, 200));
      // Its pipes too: a process that escaped the kill (reparented before the walk) must not keep the job open.
      child.stdout.destroy();
      child.stderr.destroy();
    }, FILE_TIMEOUT_MS);
    for (const stream of [child.stdout, child.stderr]) {
      const out = stream === child.stdout ? process.stdout : process.stderr;
      createInterface({ input: stream }).on('line', (l) => {
        const m = SUMMARY.exec(l);
        if (m) { totals[m[1]] = (totals[m[1]] ?? 0) + Number(m[2]); return; }
        if (FAILING.test(l)) failing = true;
        else if ((failing || ASYNC_ERROR.test(l)) && stream === child.stdout && mine.length < 200) mine.push(l);
        out.write(prefix ? `[${worker}] ${l}\n` : `${l}\n`);
      });
    }
    child.on('close', (code, signal) => {
      running.delete(child);
      clearTimeout(watchdog);
      if (hung) code = 1;
      if (failing || code !== 0) failures.push(`── ${job.name} (${worker}): exit ${code ?? signal}`, ...mine);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

const started = Date.now();
const times = [];
let heavyRunning = false;
let failed = false;
const workers = serial ? ['w1'] : ['w1', 'w2'];

/** Takes queued jobs until none is left; a heavy job waits while the other worker runs one. */
async function worker(name) {
  for (;;) {
    const i = jobs.findIndex((j) => !j.heavy || !heavyRunning);
    if (i < 0) {
      if (jobs.length === 0) return;
      await sleep(200);
      continue;
    }
    const [job] = jobs.splice(i, 1);
    if (job.heavy) heavyRunning = true;
    const t0 = Date.now();
    const code = await run(name, job, workers.length > 1);
    if (job.heavy) heavyRunning = false;
    times.push([job.name, Date.now() - t0, name]);
    if (code !== 0) failed = true;
  }
}
await Promise.all(workers.map(worker));

const wall = Date.now() - started;
console.log('\ntime per test file, process start to end (slowest first):');
for (const [f, ms, w] of times.sort((a, b) => b[1] - a[1])) {
  console.log(`${(ms / 1000).toFixed(1).padStart(8)} s  ${w}  ${f}${f === UNIT ? ` (${unitFiles.length} files)` : ''}`);
}
if (failures.length > 0) console.log(`\nfailing tests, again:\n${failures.join('\n')}`);
console.log(Object.entries(totals).filter(([k]) => k !== 'duration_ms').map(([k, v]) => `ℹ ${k} ${v}`).join('\n'));
try {
  mkdirSync(dirname(TIMES), { recursive: true });
  const now = Object.fromEntries(times.map(([f, ms]) => [f, ms]));
  writeFileSync(TIMES, JSON.stringify({ ...lastTimes, ...now }, null, 1));
} catch { /* only an ordering hint */ }
console.log(`\nsuite wall time: ${(wall / 60000).toFixed(1)} min (${workers.length} worker${workers.length > 1 ? 's' : ''}, ` +
  `${times.length} jobs)`);
process.exit(failed ? 1 : 0);
