// The OpenCL remoting helpers, one process per VM (helper-main.ts), as the server sees them: start one for a VM whose
// QEMU serves the remoting port, stop it with the VM. The server registers this with the VM manager's events; the
// VM manager knows nothing of it (it only adds the port to QEMU's command line).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export { PORT_NAME } from './protocol.ts';

const ENTRY = join(import.meta.dirname, import.meta.url.endsWith('.js') ? 'helper-main.js' : 'helper-main.ts');
const COMPILED = ENTRY.endsWith('.js');

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
      child = spawn(process.execPath, [...loader, ENTRY, files.socket, ...(files.window ? [files.window] : [])], {
        stdio: ['ignore', logFd, logFd, 'ipc'],
        cwd: files.dir,
        // Only what PoCL needs: no server secrets in the environment of a process that runs guest kernels.
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: files.dir, POCL_CACHE_DIR: cache },
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
