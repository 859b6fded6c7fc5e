// What scripts/run-tests.js says about a test file that hangs, before it ends it: the file's processes (QEMU,
// servers, browsers: every process that carries the job's ORIEL_TEST_JOB mark in its environment, which QEMU and
// the capture workers inherit even when started detached, plus the job's descendants), each with its state and the
// kernel function it waits in (/proc: a QEMU stuck in an uninterruptible wait shows there), and for each node process
// among them its open handles, from node's diagnostic report (the runner starts node processes with
// --report-on-signal, SIGUSR2, reports written to REPORT_DIR). A process busy in synchronous JS or native code writes
// no report (the report is made by a JS signal listener), and node 20's report of an idle process has no JS stack.
// Then every one of those processes is killed.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REPORT_DIR = join(tmpdir(), `oriel-hang-reports-${process.pid}`);
mkdirSync(REPORT_DIR, { recursive: true });
process.on('exit', () => rmSync(REPORT_DIR, { recursive: true, force: true }));

const read = (path) => { try { return readFileSync(path, 'utf8'); } catch { return ''; } };
const pause = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const pidsNow = () => readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);

/** The pids under root (itself first), from /proc's parent links. */
function descendants(root) {
  const children = new Map();
  for (const pid of pidsNow()) {
    const stat = read(`/proc/${pid}/stat`);
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(pid);
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

/** Every process of job `mark` (ORIEL_TEST_JOB in its environment) and every descendant of `root`. */
function jobProcesses(root, mark) {
  const marked = pidsNow().filter((p) => read(`/proc/${p}/environ`).split('\0').includes(`ORIEL_TEST_JOB=${mark}`));
  return [...new Set([...descendants(root), ...marked])].filter((p) => p !== process.pid);
}

const commandLine = (pid) => read(`/proc/${pid}/cmdline`).split('\0').join(' ').trim();
/** Its state letter (R, S, D...) and the kernel function it waits in. */
function kernelState(pid) {
  const stat = read(`/proc/${pid}/stat`);
  return `${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '?'} ${read(`/proc/${pid}/wchan`) || '-'}`;
}

const LOOP_INTERNALS = new Set(['async', 'check', 'prepare', 'idle', 'signal', 'loop']);

/** What keeps one node process's loop alive, from its report. */
function summarise(report) {
  const lines = [];
  const handles = (report.libuv ?? []).filter((h) => h.is_active && !LOOP_INTERNALS.has(h.type));
  const timers = handles.filter((h) => h.type === 'timer').length;
  lines.push(`  active handles: ${handles.length} (${timers} timers)`);
  for (const h of handles.filter((x) => x.type !== 'timer').slice(0, 20)) {
    const ends = [h.localEndpoint, h.remoteEndpoint].filter(Boolean)
      .map((e) => (typeof e === 'string' ? e : `${e.host ?? ''}:${e.port ?? ''}`)).join(' → ');
    lines.push(`    ${h.type}${h.pid ? ` pid ${h.pid}` : ''}${ends ? ` ${ends}` : ''}${h.filename ? ` ${h.filename}` : ''}`);
  }
  const workers = report.workers?.length ?? 0;
  if (workers > 0) lines.push(`  worker threads: ${workers}`);
  return lines;
}

/** Prints what the processes of a job (root `pid`, mark `mark`) are doing, kills them all, returns the lines. */
export function endHungJob(pid, mark, title) {
  const pids = jobProcesses(pid, mark).filter((p) => commandLine(p) !== '');
  const lines = [`✖ ${title}; its processes (pid, state, kernel wait, command):`];
  for (const p of pids) lines.push(`  ${p} ${kernelState(p)} ${commandLine(p).slice(0, 200)}`);
  // Only those that will answer SIGUSR2 with a report: to another process it may be the end.
  const nodes = pids.filter((p) => /(^|\/)node$/.test(read(`/proc/${p}/cmdline`).split('\0')[0]) &&
    read(`/proc/${p}/environ`).includes('--report-on-signal'));
  for (const p of nodes) { try { process.kill(p, 'SIGUSR2'); } catch { /* gone */ } }
  pause(3000);
  const reports = readdirSync(REPORT_DIR);
  for (const p of nodes) {
    const file = reports.find((f) => f.includes(`.${p}.`));
    lines.push(`node ${p}: ${commandLine(p).slice(0, 160)}`);
    if (!file) { lines.push('  (no report: busy in synchronous JS or native code)'); continue; }
    try { lines.push(...summarise(JSON.parse(read(join(REPORT_DIR, file))))); } catch { lines.push('  (bad report)'); }
    rmSync(join(REPORT_DIR, file), { force: true }); // a later hang's pid may be this one's
  }
  killAll([...pids, ...jobProcesses(pid, mark)]);
  // And the job's process group (the runner starts each job as a group of its own).
  try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
  for (const l of lines) console.log(l);
  return lines;
}

function killAll(pids) {
  for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
}

/** Ends the jobs still running (`running`: child → its mark), and every process of theirs, when the runner itself is
 * interrupted: each job runs in a process group of its own, which a terminal's Ctrl-C does not reach. */
export function endOnInterrupt(running) {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      for (const [child, mark] of running) {
        killAll(jobProcesses(child.pid, mark));
        try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
      }
      process.exit(130);
    });
  }
}
