// The OpenCL remoting helpers, one process per VM (helper-main.ts), as the server sees them: start one for a VM whose
// QEMU serves the remoting port, stop it with the VM. The server registers this with the VM manager's events; the
// VM manager knows nothing of it (it only adds the port to QEMU's command line).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  BWRAP, SANDBOX_VM, insideFiles, sandboxArgs, sandboxAvailable, type SandboxFiles,
} from './sandbox.ts';

export { PORT_NAME } from './protocol.ts';

const ENTRY = join(import.meta.dirname, import.meta.url.endsWith('.js') ? 'helper-main.js' : 'helper-main.ts');
const COMPILED = ENTRY.endsWith('.js');
/** Oriel's folder (src/ or dist/ and node_modules in it): what the sandboxed helper needs of Oriel. */
const CODE_ROOT = join(import.meta.dirname, '..', '..');

export interface HelperFiles {
  /** The unix socket QEMU serves for the port (virtio-serial chardev, server=on). */
  socket: string;
  /** The VM's folder (0700): the helper's log and PoCL's kernel cache go there. */
  dir: string;
  /** The zero-copy window file QEMU maps as the ivshmem-plain device's RAM (window.ts). */
  window?: string;
}

export class RemotingHelpers {
  private readonly running = new Map<string, ChildProcess>();

  /** sandbox: run each helper under bubblewrap when it is installed (sandbox.ts). */
  constructor(private readonly sandbox = true) {}

  /** Starts the helper of `vmId` unless one runs. */
  start(vmId: string, files: HelperFiles): void {
    if (this.running.has(vmId)) return;
    const cache = join(files.dir, 'opencl-cache');
    mkdirSync(cache, { recursive: true, mode: 0o700 });
    const logFd = openSync(join(files.dir, 'opencl.log'), 'a', 0o600);
    let child: ChildProcess;
    try {
      writeSync(logFd, `--- ${new Date().toISOString()} starting the OpenCL helper\n`);
      const loader = COMPILED ? [] : ['--import', import.meta.resolve('tsx')];
      const argv = (f: SandboxFiles) => [process.execPath, ...loader, ENTRY, f.socket, ...(f.window ? [f.window] : [])];
      // Only what PoCL needs: no server secrets in the environment of a process that runs guest kernels.
      const env = (f: SandboxFiles, home: string) => ({ PATH: '/usr/bin:/bin', HOME: home, POCL_CACHE_DIR: f.cache });
      const outside: SandboxFiles = { socket: files.socket, cache, ...(files.window ? { window: files.window } : {}) };
      const sandboxed = this.sandbox && sandboxAvailable();
      writeSync(logFd, sandboxed ? 'sandbox: bubblewrap\n' : 'sandbox: none (bubblewrap is not installed)\n');
      const inside = insideFiles(outside);
      const [cmd, ...args] = sandboxed
        ? [BWRAP, ...sandboxArgs(outside, CODE_ROOT, env(inside, SANDBOX_VM), argv(inside))]
        : argv(outside);
      child = spawn(cmd!, args, {
        stdio: ['ignore', logFd, logFd, 'ipc'],
        cwd: files.dir,
        env: env(outside, files.dir),
      });
    } finally {
      closeSync(logFd);
    }
    child.on('error', () => undefined);
    child.once('exit', () => {
      if (this.running.get(vmId) === child) this.running.delete(vmId);
    });
    this.running.set(vmId, child);
  }

  stop(vmId: string): void {
    const c = this.running.get(vmId);
    if (!c) return;
    this.running.delete(vmId);
    c.kill('SIGTERM');
  }

  /** The helper's pid, if one runs for the VM. */
  pid(vmId: string): number | undefined {
    return this.running.get(vmId)?.pid;
  }

  stopAll(): void {
    for (const id of [...this.running.keys()]) this.stop(id);
  }
}
