// The OpenCL remoting helpers, one process per VM (helper-main.ts), as the server sees them: start one for a VM whose
// QEMU serves the remoting port, stop it with the VM, and hold its commands for a while (hold: nothing the helper
// runs writes the VM's window meanwhile). The server registers this with the VM manager's events; the VM manager
// knows nothing of it (it only adds the port to QEMU's command line).
//
// The helper reaches nothing of its VM's folder by path: the server opens the window file and hands it over as fd 3,
// and dials QEMU's port socket for it whenever it asks, passing the connected socket over the IPC channel.
import type { ChildProcess } from 'node:child_process';
import { chownSync, closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { SANDBOX_TMP, sandboxAvailable, spawnConfined } from './sandbox.ts';
import { HelperUids, type UidRange } from './uids.ts';
import type { FromHelper, ToHelper } from './control.ts';

export { PORT_NAME } from './protocol.ts';
export { DEFAULT_UID_RANGE, type UidRange } from './uids.ts';

const ENTRY = join(import.meta.dirname, import.meta.url.endsWith('.js') ? 'helper-main.js' : 'helper-main.ts');
const COMPILED = ENTRY.endsWith('.js');
/** Oriel's folder (src/ or dist/ and node_modules in it): what the sandboxed helper needs of Oriel. */
const CODE_ROOT = join(import.meta.dirname, '..', '..');
/** A hold lifts itself after this long (a capture that hangs, a server that forgot it). */
export const HOLD_MAX_MS = 10 * 60_000;
/** How long a helper may take to stop running commands when asked to hold (a long kernel may be under way). */
export const HOLD_ACK_MS = 30_000;

export interface HelperFiles {
  /** The unix socket QEMU serves for the port (virtio-serial chardev, server=on). */
  socket: string;
  /** The VM's folder (0700): the helper's log goes there. */
  dir: string;
  /** The zero-copy window file QEMU maps as the ivshmem-plain device's RAM (window.ts). */
  window?: string;
}

export interface HelpersOptions {
  /** Run each helper under bubblewrap with the seccomp filter when bwrap is installed (sandbox.ts). */
  sandbox?: boolean;
  /** The host uids helpers run as when the server is root (uids.ts). */
  uids?: UidRange;
  /** The server's log (warnings: said once). */
  log?: (msg: string) => void;
}

interface Helper {
  child: ChildProcess;
  uid?: number;
  scratch?: string;
}

/** Whether a uid that owns nothing can read and traverse down to `path`. */
function othersReach(path: string): boolean {
  for (let p = resolve(path); ; p = dirname(p)) {
    if ((statSync(p).mode & 0o005) !== 0o005) return false;
    if (p === dirname(p)) return true;
  }
}

export class RemotingHelpers {
  private readonly running = new Map<string, Helper>();
  private readonly uids: HelperUids;
  private readonly sandbox: boolean;
  private readonly log: (msg: string) => void;
  private readonly said = new Set<string>();

  constructor(o: HelpersOptions = {}) {
    this.sandbox = o.sandbox ?? true;
    this.uids = new HelperUids(o.uids);
    this.log = o.log ?? (() => undefined);
  }

  private once(msg: string): void {
    if (this.said.has(msg)) return;
    this.said.add(msg);
    this.log(msg);
  }

  /** The uid a new helper of `vmId` runs as (undefined: the server's own), and why not a dedicated one. */
  private chooseUid(vmId: string): { uid?: number; why?: string } {
    if (process.getuid?.() !== 0) {
      return { why: "the server's (it does not run as root, so helpers cannot have a uid of their own)" };
    }
    if (!othersReach(CODE_ROOT)) return { why: `the server's (a helper's own uid could not read Oriel's code in ${CODE_ROOT})` };
    const uid = this.uids.take(vmId);
    return uid === undefined ? { why: "the server's (every uid of ORIEL_OPENCL_UIDS is taken)" } : { uid };
  }

  /** Starts the helper of `vmId` unless one runs. */
  start(vmId: string, files: HelperFiles): void {
    if (this.running.has(vmId)) return;
    const logFd = openSync(join(files.dir, 'opencl.log'), 'a', 0o600);
    const fds: number[] = [];
    const h: Partial<Helper> = {};
    try {
      const note = (s: string) => writeSync(logFd, `${s}\n`);
      note(`--- ${new Date().toISOString()} starting the OpenCL helper`);
      const { uid, why } = this.chooseUid(vmId);
      h.uid = uid;
      if (why) this.once(`OpenCL helpers run as ${why}`);
      note(uid === undefined ? `uid: ${why}` : `uid: ${uid} (its own)`);
      if (files.window) {
        try {
          fds.push(openSync(files.window, 'r+'));
        } catch (e) {
          note(`no zero-copy window: ${(e as Error).message}`);
        }
      }
      const loader = COMPILED ? [] : ['--import', import.meta.resolve('tsx')];
      const argv = [process.execPath, ...loader, ENTRY, ...(fds.length ? ['3'] : [])];
      // Only what PoCL needs: no server secrets in the environment of a process that runs guest kernels. PoCL's
      // kernel cache: the sandbox's own /tmp, else a folder only the helper's uid owns.
      const bwrap = this.sandbox && sandboxAvailable();
      let cache = join(SANDBOX_TMP, 'pocl-cache');
      if (!bwrap) {
        if (uid !== undefined) {
          h.scratch = mkdtempSync(join(tmpdir(), 'oriel-opencl-'));
          chownSync(h.scratch, uid, uid);
          cache = h.scratch;
        } else {
          cache = join(files.dir, 'opencl-cache');
          mkdirSync(cache, { recursive: true, mode: 0o700 });
        }
      }
      const env = { PATH: '/usr/bin:/bin', HOME: dirname(cache), POCL_CACHE_DIR: cache };
      const c = spawnConfined({
        argv, env, codeRoot: CODE_ROOT, hide: [resolve(files.dir, '..', '..')], sandbox: bwrap, uid, fds,
        stdout: logFd, stderr: logFd, ipc: true, cwd: cache,
      });
      note(c.bwrap ? 'sandbox: bubblewrap' : `sandbox: none (${this.sandbox ? 'bubblewrap is not installed' : 'turned off'})`);
      note(c.seccomp ? 'seccomp: on' : `seccomp: off${c.bwrap ? ` (no filter for ${process.arch})` : ''}`);
      h.child = c.child;
    } catch (e) {
      if (h.uid !== undefined) this.uids.free(h.uid);
      if (h.scratch) rmSync(h.scratch, { recursive: true, force: true });
      throw e;
    } finally {
      closeSync(logFd);
      for (const fd of fds) closeSync(fd);
    }
    const helper = h as Helper;
    const child = helper.child;
    child.on('error', () => undefined);
    child.on('message', (m: FromHelper) => {
      if (m?.t === 'dial') this.dial(child, files.socket);
    });
    child.once('exit', () => {
      if (helper.uid !== undefined) this.uids.free(helper.uid);
      if (helper.scratch) rmSync(helper.scratch, { recursive: true, force: true });
      if (this.running.get(vmId) === helper) this.running.delete(vmId);
    });
    this.running.set(vmId, helper);
  }

  /** Connects to QEMU's port socket for the helper and hands the connection over (or says why not). */
  private dial(child: ChildProcess, socket: string): void {
    const send = (m: ToHelper, handle?: import('node:net').Socket) => {
      if (!child.connected) return handle?.destroy();
      child.send(m, handle, undefined, (err) => { if (err) handle?.destroy(); });
    };
    const sock = connect(socket);
    sock.pause(); // nothing is read here: every byte is the helper's
    sock.once('connect', () => send({ t: 'link' }, sock));
    sock.once('error', (e: NodeJS.ErrnoException) => {
      sock.destroy();
      send({ t: 'nolink', error: e.code ?? e.message });
    });
  }

  /**
   * Holds the VM's OpenCL commands: resolves once the helper runs none (everything it queued on the device has
   * finished) and queues the ones that come, until the returned release is called (or `maxMs` passed). Nothing
   * the guest asks is lost: held commands run in order after the release. Resolves at once when no helper runs;
   * rejects if the helper does not stop within HOLD_ACK_MS.
   */
  async hold(vmId: string, maxMs = HOLD_MAX_MS): Promise<() => void> {
    const h = this.running.get(vmId);
    if (!h || !h.child.connected) return () => undefined;
    const child = h.child;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (child.connected) child.send({ t: 'release' } satisfies ToHelper, () => undefined);
    };
    await new Promise<void>((ok, fail) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (err) fail(err);
        else ok();
      };
      const onMessage = (m: FromHelper) => { if (m?.t === 'held') done(); };
      const onExit = () => done(); // no helper, nothing that writes
      const timer = setTimeout(() => {
        release();
        done(new Error(`the OpenCL helper of VM ${vmId} did not stop running commands within ${HOLD_ACK_MS / 1000} s`));
      }, HOLD_ACK_MS);
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send({ t: 'hold', maxMs } satisfies ToHelper, (err) => { if (err) done(); });
    });
    return release;
  }

  stop(vmId: string): void {
    const h = this.running.get(vmId);
    if (!h) return;
    this.running.delete(vmId);
    h.child.kill('SIGTERM');
  }

  /** The helper's pid (bwrap's, when sandboxed), if one runs for the VM. */
  pid(vmId: string): number | undefined {
    return this.running.get(vmId)?.child.pid;
  }

  /** The host uid the VM's helper runs as, if it has one of its own. */
  uid(vmId: string): number | undefined {
    return this.running.get(vmId)?.uid;
  }

  stopAll(): void {
    for (const id of [...this.running.keys()]) this.stop(id);
  }
}
