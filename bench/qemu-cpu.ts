// Where a transfer's time goes on this host: CPU seconds of a QEMU process's threads (the vCPU threads "CPU n/TCG",
// the main loop where spice-server and the chardevs run, the rest), read from /proc before and after.
import { readdirSync, readFileSync } from 'node:fs';

const TICK = 100; // USER_HZ on Linux

/** CPU seconds per thread group: 'vCPUs', 'main loop' (the process's first thread), 'other threads'. */
function sample(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const s = (Number(f[11]) + Number(f[12])) / TICK; // utime, stime
    const group = /^CPU \d+\//.test(comm) ? 'vCPUs' : tid === String(pid) ? 'main loop' : 'other threads';
    out.set(group, (out.get(group) ?? 0) + s);
  }
  return out;
}

/** Starts measuring; the returned function gives "vCPUs 0.95, main loop 0.40, ... (CPU s per s)". */
export function qemuCpu(pid: number): () => string {
  const t0 = performance.now();
  const a = sample(pid);
  const n0 = process.cpuUsage();
  return () => {
    const wall = (performance.now() - t0) / 1000;
    const b = sample(pid);
    const n = process.cpuUsage(n0);
    const parts = [...b].map(([k, v]) => `${k} ${((v - (a.get(k) ?? 0)) / wall).toFixed(2)}`);
    parts.push(`this node ${((n.user + n.system) / 1e6 / wall).toFixed(2)}`);
    return `CPU s per s: QEMU ${parts.join(', ')}`;
  };
}
