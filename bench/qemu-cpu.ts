// Where a transfer's time goes on this host: CPU seconds per second of a QEMU process's threads, read from /proc
// before and after: the main loop (spice-server, the chardevs, virtio-serial), the busiest other thread (with one
// vCPU under TCG and no debug-threads names, the vCPU: at 1.00 the guest is CPU-bound) and the rest; and this node
// process (the server's console proxy and the client).
import { readdirSync, readFileSync } from 'node:fs';

const TICK = 100; // USER_HZ on Linux

/** CPU seconds of each thread of `pid`. */
function sample(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, (Number(f[11]) + Number(f[12])) / TICK); // utime, stime
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** Starts measuring; the returned function tells the CPU seconds per second since. */
export function qemuCpu(pid: number): () => string {
  const t0 = performance.now();
  const a = sample(pid);
  const n0 = process.cpuUsage();
  return () => {
    const wall = (performance.now() - t0) / 1000;
    const used = [...sample(pid)].map(([tid, s]) => [tid, (s - (a.get(tid) ?? 0)) / wall] as const);
    const main = used.find(([tid]) => tid === String(pid))?.[1] ?? 0;
    const others = used.filter(([tid]) => tid !== String(pid)).map(([, v]) => v).sort((x, y) => y - x);
    const rest = others.slice(1).reduce((x, y) => x + y, 0);
    const n = process.cpuUsage(n0);
    return `CPU s/s: QEMU main loop ${main.toFixed(2)}, busiest thread ${(others[0] ?? 0).toFixed(2)}, ` +
      `rest ${rest.toFixed(2)}; node ${((n.user + n.system) / 1e6 / wall).toFixed(2)}`;
  };
}
