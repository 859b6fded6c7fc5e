// The OpenCL helper's sandbox: PoCL runs guest kernels as native code inside the helper, so a hostile kernel owns its
// helper process. Under bubblewrap (Debian `bubblewrap`) the helper sees only: /usr (read-only: node, the OpenCL ICD
// loader, PoCL and the clang it compiles with), the ICD and loader configuration in /etc, Oriel's own code (read-only),
// three things of its VM's folder in /vm (the port's socket, the window, the kernel cache; not the disk, nor the QMP
// socket), a private /tmp, /proc of its own pid namespace, minimal /dev and the CPU topology in /sys. New user, pid,
// net, ipc, uts and cgroup namespaces: no network (loopback only), no other process to signal or trace, no
// capabilities; it dies with the server.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

export const BWRAP = '/usr/bin/bwrap';

/** Whether bubblewrap is there (without it the helper runs unconfined, and says so in its log). */
export const sandboxAvailable = (): boolean => existsSync(BWRAP);

const inside = (dir: string, root: string) => {
  const r = relative(root, dir);
  return r === '' || (!r.startsWith('..') && !r.startsWith('/'));
};

/** What the helper needs of its VM's folder, and where it finds them inside the sandbox. */
export interface SandboxFiles {
  socket: string;
  window?: string;
  cache: string;
}
export const SANDBOX_VM = '/vm';
export const insideFiles = (f: SandboxFiles): SandboxFiles => ({
  socket: `${SANDBOX_VM}/opencl.sock`,
  ...(f.window ? { window: `${SANDBOX_VM}/opencl-window` } : {}),
  cache: `${SANDBOX_VM}/opencl-cache`,
});

/** bwrap's arguments to run `argv` (which names insideFiles(files)); `codeRoot` is Oriel's folder (code and
 * node_modules), `env` the helper's environment (paths in it should be the inside ones). */
export function sandboxArgs(
  files: SandboxFiles, codeRoot: string, env: Record<string, string>, argv: string[],
): string[] {
  const a = ['--unshare-all', '--die-with-parent', '--new-session', '--cap-drop', 'ALL'];
  // The environment is the spawner's (Node's IPC channel is named in it) with the paths set to the inside ones.
  for (const [k, v] of Object.entries(env)) a.push('--setenv', k, v);
  a.push('--ro-bind', '/usr', '/usr');
  for (const l of ['bin', 'lib', 'lib64', 'sbin']) a.push('--symlink', `usr/${l}`, `/${l}`);
  for (const f of ['/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/OpenCL', '/etc/alternatives']) {
    if (existsSync(f)) a.push('--ro-bind', f, f);
  }
  a.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
  if (existsSync('/sys/devices/system/cpu')) a.push('--ro-bind', '/sys/devices/system/cpu', '/sys/devices/system/cpu');
  const node = realpathSync(process.execPath);
  if (!node.startsWith('/usr/')) a.push('--ro-bind', dirname(node), dirname(node));
  const root = realpathSync(codeRoot);
  a.push('--ro-bind', root, root);
  const modules = join(root, 'node_modules');
  if (existsSync(modules) && !inside(realpathSync(modules), root)) a.push('--ro-bind', realpathSync(modules), modules);
  // The data directory may sit inside Oriel's folder: hide it (every VM's folder, the database).
  const data = resolve(realpathSync(files.cache), '..', '..', '..');
  if (inside(data, root)) a.push('--tmpfs', data);
  const to = insideFiles(files);
  a.push('--dir', SANDBOX_VM, '--bind', files.socket, to.socket, '--bind', files.cache, to.cache);
  if (files.window && to.window) a.push('--bind', files.window, to.window);
  a.push('--chdir', SANDBOX_VM, '--', ...argv);
  return a;
}
