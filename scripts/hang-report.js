// What scripts/run-tests.js says about a test file that hangs, before it ends it: the file's processes (QEMU,
// servers, browsers: all descendants of the file's node process), and for each node process among them its JS stack
// and open handles, from node's diagnostic report (the runner starts every node process with --report-on-signal,
// SIGUSR2, reports written to REPORT_DIR). Then every one of those processes is killed.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REPORT_DIR = join(tmpdir(), `oriel-hang-reports-${process.pid}`);
mkdirSync(REPORT_DIR, { recursive: true });
process.on('exit', () => rmSync(REPORT_DIR, { recursive: true, force: true }));

const read = (path) => { try { return readFileSync(path, 'utf8'); } catch { return ''; } };
const pause = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** The pids under root (itself first), from /proc's parent links. */
function descendants(root) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = read(`/proc/${name}/stat`);
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(name));
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

const commandLine = (pid) => read(`/proc/${pid}/cmdline`).split('\0').join(' ').trim();

const LOOP_INTERNALS = new Set(['async', 'check', 'prepare', 'idle', 'signal', 'loop']);

/** A short account of one node process's report: where its JS stands and what keeps its loop alive. */
function summarise(report) {
  const lines = [];
  const stack = report.javascriptStack?.stack ?? [];
  if (stack.length > 0 && !/No stack/.test(report.javascriptStack?.message ?? '')) {
    lines.push('  JS stack:', ...stack.slice(0, 8).map((l) => `    ${l.trim()}`));
  } else lines.push('  JS stack: idle (waiting in the event loop)');
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

/** Prints what the processes under pid are doing, kills them all, and returns the lines printed. */
export function endHungJob(pid, title) {
  const pids = descendants(pid).filter((p) => commandLine(p) !== '');
  const lines = [`✖ ${title}; its processes:`];
  for (const p of pids) lines.push(`  ${p} ${commandLine(p).slice(0, 200)}`);
  const nodes = pids.filter((p) => /(^|\/)node$/.test(read(`/proc/${p}/cmdline`).split('\0')[0]));
  for (const p of nodes) { try { process.kill(p, 'SIGUSR2'); } catch { /* gone */ } }
  pause(3000);
  for (const p of nodes) {
    const file = readdirSync(REPORT_DIR).find((f) => f.includes(`.${p}.`));
    lines.push(`node ${p}: ${commandLine(p).slice(0, 160)}`);
    if (!file) { lines.push('  (no report)'); continue; }
    try { lines.push(...summarise(JSON.parse(read(join(REPORT_DIR, file))))); } catch { lines.push('  (bad report)'); }
  }
  for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  // And the job's process group (the runner starts each job as a group of its own): what left the tree by being
  // reparented (a grandchild whose parent exited) is still in it.
  try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
  for (const l of lines) console.log(l);
  return lines;
}

/** Ends the jobs still running, and every process under them (QEMU, servers, browsers), when the runner itself is
 * interrupted: each job runs in a process group of its own, which a terminal's Ctrl-C does not reach. */
export function endOnInterrupt(running) {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      const pids = [...running].flatMap((child) => descendants(child.pid));
      for (const p of pids) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
      process.exit(130);
    });
  }
}
