// No descriptor of the server reaches an OpenCL helper but the ones it is given (stdio, the window, the control and
// descriptor channels): before each spawn (sandbox.ts) the server marks close-on-exec any of its descriptors that
// lacks it (one a native module or the server's own parent left without it), so the exec drops them. Node's spawn
// puts the helper's own descriptors in place whatever their flag.
import { readFileSync, readdirSync } from 'node:fs';
import { setCloseOnExec } from './unix.ts';

const O_CLOEXEC = 0o2000000;

/** Descriptors of process `pid` without close-on-exec (what a program it ran would inherit). */
export function inheritableFds(pid: number | 'self' = 'self'): number[] {
  const out: number[] = [];
  for (const name of readdirSync(`/proc/${pid}/fd`)) {
    let info = '';
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${name}`, 'utf8');
    } catch {
      continue; // closed meanwhile (the directory listing's own descriptor)
    }
    const flags = Number.parseInt(/^flags:\s+([0-7]+)/m.exec(info)?.[1] ?? '0', 8);
    if (!(flags & O_CLOEXEC)) out.push(Number(name));
  }
  return out.sort((a, b) => a - b);
}

/** Marks close-on-exec every descriptor of this process but stdio; returns how many lacked it. */
export function closeOnExecAll(): number {
  let n = 0;
  for (const fd of inheritableFds()) {
    if (fd > 2) {
      setCloseOnExec(fd);
      n++;
    }
  }
  return n;
}
