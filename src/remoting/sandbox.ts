// The OpenCL helper's sandbox: PoCL runs guest kernels as native code inside the helper, so a hostile kernel owns its
// helper process. Three layers, each on its own (README, Security):
// - bubblewrap (Debian `bubblewrap`): the helper sees only /usr (read-only: node, the OpenCL ICD loader, PoCL and the
//   clang it compiles with), the ICD and loader configuration in /etc, Oriel's own code (read-only), a private /tmp
//   (PoCL's kernel cache), /proc of its own pid namespace, minimal /dev and the CPU topology in /sys; nothing of
//   Oriel's data directory: its VM's window and port come as descriptors (index.ts). New user, pid, net, ipc, uts
//   and cgroup namespaces: no network (loopback only), no other process to signal or trace, no capabilities; it
//   dies with the server.
// - a host uid and gid of its own (uids.ts) when the server runs as root: nothing on the host belongs to it.
// - a seccomp filter (seccomp.ts) that bwrap installs just before it runs the helper.
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { closeOnExecAll } from './fd-hygiene.ts';
import { limitArgs } from './limits.ts';
import { seccompFilter } from './seccomp.ts';

export const BWRAP = '/usr/bin/bwrap';

/** Whether `bwrap` is there and can make its namespaces on this host; if not, why. A container without
 * CAP_SYS_ADMIN, or a kernel or security module that forbids user namespaces, leaves bwrap installed but unable to
 * run anything: found once at the first helper's start (or the server's refusal), not as every helper failing. */
export function probeSandbox(bwrap = BWRAP): { ok: true } | { ok: false; why: string } {
  if (!existsSync(bwrap)) return { ok: false, why: `bubblewrap (${bwrap}) is not installed` };
  const r = spawnSync(bwrap, ['--ro-bind', '/', '/', '--unshare-all', '--die-with-parent', '/bin/true'], {
    encoding: 'utf8', timeout: 10_000,
  });
  if (r.status === 0) return { ok: true };
  const said = `${r.stderr ?? ''}`.trim().split('\n')[0]?.slice(0, 200) || r.error?.message || `exit ${r.status}`;
  return { ok: false, why: `bubblewrap (${bwrap}) cannot make its namespaces on this host (${said})` };
}

let probed: ReturnType<typeof probeSandbox> | undefined;
/** The probe of the installed bwrap, asked once (without a sandbox the helper runs unconfined, and says so in its
 * log; a server running as root refuses helpers then: index.ts). */
export function sandboxState(): ReturnType<typeof probeSandbox> {
  probed ??= probeSandbox();
  return probed;
}
export const sandboxAvailable = (): boolean => sandboxState().ok;

const inside = (dir: string, root: string) => {
  const r = relative(root, dir);
  return r === '' || (!r.startsWith('..') && !r.startsWith('/'));
};

let userns: boolean | undefined;
/** Whether the installed bwrap has --disable-userns (0.8.0 and later): asked once. */
export function canDisableUserns(): boolean {
  if (userns === undefined) {
    const help = spawnSync(BWRAP, ['--help'], { encoding: 'utf8', timeout: 5000 });
    userns = `${help.stdout}${help.stderr}`.includes('--disable-userns');
  }
  return userns;
}

/** Where the helper's scratch (PoCL's cache, HOME) is inside the sandbox: a tmpfs of its own. */
export const SANDBOX_TMP = '/tmp';
/** Its size cap: a tmpfs lives in the host's memory, and a guest's requests could otherwise fill it without bound
 * (PoCL keeps compiled kernels there: a few MiB). */
export const SANDBOX_TMP_BYTES = 128 << 20;

let sizeOption: boolean | undefined;
/** Whether this bwrap takes --size for a tmpfs (bubblewrap 0.5 and later). */
function canSizeTmpfs(): boolean {
  if (sizeOption === undefined) {
    const help = spawnSync(BWRAP, ['--help'], { encoding: 'utf8', timeout: 5000 });
    sizeOption = `${help.stdout}${help.stderr}`.includes('--size');
  }
  return sizeOption;
}

/** bwrap's arguments to run `argv`; `codeRoot` is Oriel's folder (code and node_modules), `env` the program's
 * environment, `hide` folders (the data directory) to mask if they sit inside what is mounted. */
export function sandboxArgs(
  o: { codeRoot: string; env: Record<string, string>; argv: string[]; hide: string[]; seccompFd?: number },
): string[] {
  const a = ['--unshare-all', '--die-with-parent', '--new-session', '--cap-drop', 'ALL'];
  // No user namespace inside (seccomp denies them too): the kernel's count of them is zero in the sandbox's.
  if (canDisableUserns()) a.push('--unshare-user', '--disable-userns');
  // The environment is the spawner's with these set.
  for (const [k, v] of Object.entries(o.env)) a.push('--setenv', k, v);
  a.push('--ro-bind', '/usr', '/usr');
  for (const l of ['bin', 'lib', 'lib64', 'sbin']) a.push('--symlink', `usr/${l}`, `/${l}`);
  for (const f of ['/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/OpenCL', '/etc/alternatives']) {
    if (existsSync(f)) a.push('--ro-bind', f, f);
  }
  a.push('--proc', '/proc', '--dev', '/dev');
  if (canSizeTmpfs()) a.push('--size', String(SANDBOX_TMP_BYTES));
  a.push('--tmpfs', SANDBOX_TMP);
  if (existsSync('/sys/devices/system/cpu')) a.push('--ro-bind', '/sys/devices/system/cpu', '/sys/devices/system/cpu');
  const node = realpathSync(process.execPath);
  if (!node.startsWith('/usr/')) a.push('--ro-bind', dirname(node), dirname(node));
  const root = realpathSync(o.codeRoot);
  a.push('--ro-bind', root, root);
  const modules = join(root, 'node_modules');
  if (existsSync(modules) && !inside(realpathSync(modules), root)) a.push('--ro-bind', realpathSync(modules), modules);
  // The data directory may sit inside Oriel's folder: hide it (every VM's folder, the database).
  for (const h of o.hide) {
    const real = existsSync(h) ? realpathSync(h) : h;
    if (inside(real, root)) a.push('--tmpfs', real);
  }
  if (o.seccompFd !== undefined) a.push('--seccomp', String(o.seccompFd));
  a.push('--chdir', SANDBOX_TMP, '--', ...o.argv);
  return a;
}

export interface ConfineOptions {
  /** The program and its arguments (paths as seen inside the sandbox). */
  argv: string[];
  env: Record<string, string>;
  /** Oriel's folder (read-only inside) and folders to hide in it. */
  codeRoot: string;
  hide: string[];
  /** Run under bubblewrap (with the seccomp filter) when it is installed. */
  sandbox: boolean;
  /** The host uid and gid to run as (the spawner must be root). */
  uid?: number;
  /** Descriptors for the program's fds 3, 4, ... ('ignore': that number stays closed). */
  fds: (number | 'ignore')[];
  stdout: number | 'pipe';
  stderr: number | 'pipe';
  /** The working directory when unsandboxed. */
  cwd: string;
  /** RLIMIT_NPROC for the program (its uid's tasks: only with a uid of its own); limits.ts. */
  nproc?: number;
}

export interface Confined {
  child: ChildProcess;
  bwrap: boolean;
  seccomp: boolean;
  /** Whether prlimit set the limits (limits.ts). */
  limited: boolean;
}

/** Starts a program confined as the OpenCL helper is (index.ts uses it for the helper, the tests for probes). */
export function spawnConfined(o: ConfineOptions): Confined {
  const bwrap = o.sandbox && sandboxAvailable();
  const filter = bwrap ? seccompFilter() : undefined;
  const stdio: StdioOptions = ['ignore', o.stdout, o.stderr, ...o.fds];
  const seccompFd = filter ? stdio.length : undefined;
  if (filter) stdio.push('pipe');
  const limits = limitArgs({ nproc: o.nproc });
  const [cmd, ...args] = [...limits, ...(bwrap
    ? [BWRAP, ...sandboxArgs({ codeRoot: o.codeRoot, env: o.env, argv: o.argv, hide: o.hide, seccompFd })]
    : o.argv)];
  closeOnExecAll(); // no descriptor of the server's but `stdio` reaches the program
  const child = spawn(cmd!, args, {
    stdio,
    cwd: bwrap ? '/' : o.cwd,
    env: o.env,
    ...(o.uid !== undefined ? { uid: o.uid, gid: o.uid } : {}),
  });
  if (filter && seccompFd !== undefined) {
    // bwrap reads the program to its end before it runs anything.
    const pipe = child.stdio[seccompFd] as import('node:stream').Writable | null;
    pipe?.on('error', () => undefined);
    pipe?.end(filter);
  }
  return { child, bwrap, seccomp: !!filter, limited: limits.length > 0 };
}
