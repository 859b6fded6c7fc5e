// The OpenCL remoting helpers, one process per VM (helper-main.ts), as the server sees them: start one for a VM whose
// QEMU serves the remoting port, stop it with the VM, and hold its commands for a while (hold: nothing the helper
// runs writes the VM's window meanwhile). The server registers this with the VM manager's events; the VM manager
// knows nothing of it (it only adds the port to QEMU's command line).
//
// The helper reaches nothing of its VM's folder by path: the server opens the window file and hands it over as fd 3,
// and dials QEMU's port socket for it whenever it asks, passing the connected socket on the descriptor channel (fd 5).
// Its control channel (fd 4, control.ts, channel.ts) is read as hostile input: a helper that breaks its rules is
// killed.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  chownSync, closeSync, mkdirSync, mkdtempSync, openSync, statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { SANDBOX_TMP, sandboxAvailable, sandboxState, spawnConfined } from './sandbox.ts';
import { HelperUids, type UidRange } from './uids.ts';
import { HelperChannel } from './channel.ts';
import { HelperLog } from './helper-log.ts';
import { Hold } from './hold.ts';
import { PRLIMIT, helperNproc } from './limits.ts';

export { PORT_NAME } from './protocol.ts';
export { STILL_RUNNING } from './hold.ts';
export { DEFAULT_UID_RANGE, type UidRange } from './uids.ts';

/** Why helpers run without bubblewrap although the sandbox is on. */
const sandboxWhyNot = (): string => {
  const s = sandboxState();
  return s.ok ? 'not used' : s.why;
};

const ENTRY = join(import.meta.dirname, import.meta.url.endsWith('.js') ? 'helper-main.js' : 'helper-main.ts');
const COMPILED = ENTRY.endsWith('.js');
/** Oriel's folder (src/ or dist/ and node_modules in it): what the sandboxed helper needs of Oriel. */
const CODE_ROOT = join(import.meta.dirname, '..', '..');
/** A hold lifts itself after this long (a capture that hangs, a server that forgot it). */
export const HOLD_MAX_MS = 10 * 60_000;
/** How long a capture waits for a helper to stop running commands (a long kernel may be under way); then it goes on,
 * its window marked inexact. */
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
  /** Let helpers run unconfined when the server is root and bubblewrap is missing (or `sandbox` is off); by default
   * they are refused then (ORIEL_OPENCL_UNSANDBOXED). */
  allowUnsandboxed?: boolean;
  /** The cap on each VM's opencl.log (helper-log.ts; the server uses the serial log's cap). */
  logMaxBytes?: number;
  /** The helper's script and arguments instead of helper-main (tests run hostile stand-ins by the same recipe). */
  program?: string[];
}

interface Helper {
  child: ChildProcess;
  log: HelperLog;
  channel: HelperChannel;
  uid?: number;
  scratch?: string;
}

/** Whether a uid that owns nothing can read and traverse down to `path`. */
export function othersReach(path: string): boolean {
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
  private readonly program?: string[];
  private readonly allowUnsandboxed: boolean;
  private readonly logMaxBytes?: number;
  private readonly said = new Set<string>();
  /** Holds on per VM (a helper that starts meanwhile starts held). */
  private readonly holding = new Map<string, Set<Hold>>();
  /** VMs whose helper was killed for breaking the control protocol, and why. */
  private readonly failed = new Map<string, string>();

  constructor(o: HelpersOptions = {}) {
    this.sandbox = o.sandbox ?? true;
    this.uids = new HelperUids(o.uids);
    this.log = o.log ?? (() => undefined);
    this.program = o.program;
    this.allowUnsandboxed = o.allowUnsandboxed ?? false;
    this.logMaxBytes = o.logMaxBytes;
  }

  /** Why helpers may not start at all (the server is root and they would run unconfined), if so: the VM start says
   * this, and the server's log once. */
  refusal(): string | undefined {
    if (process.getuid?.() !== 0 || (this.sandbox && sandboxAvailable()) || this.allowUnsandboxed) return undefined;
    const state = sandboxState();
    const why = !this.sandbox ? 'the sandbox is turned off' : state.ok ? 'the sandbox is unusable' : state.why;
    return `OpenCL helpers are refused: the server runs as root and ${why}, so they would run guest kernels `
      + 'unconfined on the host network; install bubblewrap (and let it make namespaces), or set '
      + 'ORIEL_OPENCL_UNSANDBOXED=1 to allow it';
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

  /** Starts the helper of `vmId` unless one runs (or its last one broke the control protocol: then not until the VM
   * stops). */
  start(vmId: string, files: HelperFiles): void {
    if (this.running.has(vmId) || this.failed.has(vmId)) return;
    const log = new HelperLog(join(files.dir, 'opencl.log'), this.logMaxBytes);
    const refused = this.refusal();
    if (refused) {
      this.once(refused);
      log.note(`--- ${new Date().toISOString()} ${refused}`);
      log.close();
      return;
    }
    let window: number | undefined;
    const h: Partial<Helper> = { log };
    try {
      const note = (s: string) => log.note(s);
      note(`--- ${new Date().toISOString()} starting the OpenCL helper`);
      const { uid, why } = this.chooseUid(vmId);
      h.uid = uid;
      if (why) this.once(`OpenCL helpers run as ${why}`);
      note(uid === undefined ? `uid: ${why}` : `uid: ${uid} (its own)`);
      if (files.window) {
        try {
          window = openSync(files.window, 'r+');
        } catch (e) {
          note(`no zero-copy window: ${(e as Error).message}`);
        }
      }
      h.channel = new HelperChannel(files.socket, (why) => this.violation(vmId, why));
      const fds = [window ?? 'ignore' as const, ...h.channel.ends.child];
      const loader = COMPILED ? [] : ['--import', import.meta.resolve('tsx')];
      const argv = [process.execPath, ...loader, ...(this.program ?? [ENTRY, ...(window !== undefined ? ['3'] : [])])];
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
      const env = { PATH: '/usr/bin:/bin', HOME: cache, POCL_CACHE_DIR: cache };
      const c = spawnConfined({
        argv, env, codeRoot: CODE_ROOT, hide: [resolve(files.dir, '..', '..')], sandbox: bwrap, uid, fds,
        stdout: 'pipe', stderr: 'pipe', cwd: cache, nproc: uid !== undefined ? helperNproc() : undefined,
      });
      note(c.bwrap ? 'sandbox: bubblewrap' : `sandbox: none (${!this.sandbox ? 'turned off' : sandboxWhyNot()})`);
      note(c.limited ? `limits: no core dumps${uid !== undefined ? `, ${helperNproc()} tasks` : ''}` : 'limits: none '
        + `(${PRLIMIT} is not installed)`);
      note(c.seccomp ? 'seccomp: on' : `seccomp: off${c.bwrap ? ` (no filter for ${process.arch})` : ''}`);
      h.child = c.child;
      log.follow(c.child.stdout);
      log.follow(c.child.stderr);
    } catch (e) {
      log.close();
      h.channel?.close();
      if (h.uid !== undefined) this.reclaim(h.uid, h.scratch);
      throw e;
    } finally {
      if (window !== undefined) closeSync(window);
      h.channel?.ends.closeChild();
    }
    const helper = h as Helper;
    const child = helper.child;
    child.on('error', () => undefined);
    child.once('close', () => helper.log.close()); // its pipes are drained
    child.once('exit', () => {
      helper.channel.close();
      if (this.running.get(vmId) === helper) this.running.delete(vmId);
      if (helper.uid !== undefined) this.reclaim(helper.uid, helper.scratch);
    });
    this.running.set(vmId, helper);
    // A helper that starts while a capture holds its VM starts held.
    for (const hold of this.holding.get(vmId) ?? []) hold.attach(helper.channel);
  }

  /**
   * After a helper with a uid of its own ended: whatever it left running as that uid (a daemon a kernel forked, when
   * unsandboxed) is killed and its scratch folder removed, both by a process of that uid (root never deletes in a
   * folder the helper could have filled with symlinks); then the uid is free for another VM.
   */
  private reclaim(uid: number, scratch?: string): void {
    const c = spawn('/bin/sh', ['-c', 'kill -9 -1 2>/dev/null; [ -z "$1" ] || rm -rf -- "$1"', 'reclaim', scratch ?? ''],
      { uid, gid: uid, stdio: 'ignore', cwd: '/', env: { PATH: '/usr/bin:/bin' } });
    c.on('error', () => this.uids.free(uid));
    c.on('exit', () => this.uids.free(uid));
  }

  /** The helper of `vmId` wrote what it may not on its control channel: it is killed, and stays down until the VM
   * stops. */
  private violation(vmId: string, why: string): void {
    const h = this.running.get(vmId);
    this.failed.set(vmId, why);
    h?.child.kill('SIGKILL');
    const msg = `OpenCL helper of VM ${vmId} killed: it broke the control protocol (${why}); OpenCL is off for the VM until it restarts`;
    this.log(msg);
    h?.log.note(`${new Date().toISOString()} ${msg}`);
  }

  /** Why the VM's helper was killed (its OpenCL is off until the VM stops), if it was. */
  failure(vmId: string): string | undefined {
    return this.failed.get(vmId);
  }

  /**
   * Holds the VM's OpenCL commands: resolves once the helper runs none (everything it queued on the device has
   * finished) and queues the ones that come, until the returned release is called (or `maxMs` passed). Nothing
   * the guest asks is lost: held commands run in order after the release. Resolves at once when no helper runs (a
   * helper that starts meanwhile starts held). A helper still busy after a second is reported (`progress`); one still
   * busy after `ackMs` (a long kernel) does not stop the capture: the release then returns why the window's bytes may
   * be inexact, as it does when the hold lifted itself (maxMs) before the release.
   */
  async hold(
    vmId: string, o: { maxMs?: number; ackMs?: number; progress?: (msg: string) => void } = {},
  ): Promise<() => string | undefined> {
    const ackMs = o.ackMs ?? HOLD_ACK_MS;
    const hold = new Hold(o.maxMs ?? HOLD_MAX_MS);
    const set = this.holding.get(vmId) ?? new Set<Hold>();
    set.add(hold);
    this.holding.set(vmId, set);
    const release = () => {
      set.delete(hold);
      if (!set.size && this.holding.get(vmId) === set) this.holding.delete(vmId);
      return hold.release();
    };
    const h = this.running.get(vmId);
    if (!h) return release;
    hold.attach(h.channel);
    const first = Math.min(1000, ackMs);
    if (!(await hold.acked(first))) {
      o.progress?.('waiting for OpenCL commands to finish');
      if (!(await hold.acked(ackMs - first))) hold.stillRunning();
    }
    return release;
  }

  stop(vmId: string): void {
    this.failed.delete(vmId);
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
