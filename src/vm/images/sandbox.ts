// Runs a build command (debootstrap, apt-get in a chroot) so that nothing it leaves behind can outlive it:
//
//   setpriv --pdeathsig KILL -- unshare --mount --pid --fork --kill-child --mount-proc -- CMD...
//
// - a private mount namespace: whatever it mounts (the chroot's /proc, /sys, /dev/pts) exists only there and goes
//   away with it, even when Oriel is killed; the host never sees a mount inside a build folder;
// - a private PID namespace whose first process gets SIGKILL when unshare dies (--kill-child): every daemon a
//   maintainer script starts in the chroot dies with the command;
// - unshare itself gets SIGKILL when the Node process dies (setpriv --pdeathsig), and the whole process group on
//   abort.
// Output lines go to onLine as they come; the last ones are kept for the error message.
import { spawn } from 'node:child_process';

export interface SandboxOptions {
  signal?: AbortSignal;
  /** Each line of stdout and stderr (without the newline). */
  onLine?(line: string): void;
  env?: Record<string, string>;
  /** What the command is, for error messages (default: its first word). */
  what?: string;
}

const TAIL_LINES = 25;

/** A clean environment for commands that run Debian's tools (not the user's locale, proxy or PATH quirks). */
export const BUILD_ENV: Record<string, string> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LC_ALL: 'C.UTF-8',
  DEBIAN_FRONTEND: 'noninteractive',
  DEBCONF_NONINTERACTIVE_SEEN: 'true',
};

export function runSandboxed(argv: string[], o: SandboxOptions = {}): Promise<void> {
  const what = o.what ?? argv[0]!;
  o.signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const child = spawn(
      'setpriv',
      [
        '--pdeathsig',
        'KILL',
        '--',
        'unshare',
        '--mount',
        '--pid',
        '--fork',
        '--kill-child',
        '--mount-proc',
        '--',
        ...argv,
      ],
      {
        detached: true, // its own process group, so an abort ends all of it
        stdio: ['ignore', 'pipe', 'pipe'],
        env: o.env ?? BUILD_ENV,
      },
    );
    const tail: string[] = [];
    const take = (stream: NodeJS.ReadableStream) => {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => {
        const lines = (partial + d).split(/\r?\n|\r/);
        partial = lines.pop()!;
        for (const l of lines) line(l);
      });
      stream.on('end', () => partial && line(partial));
    };
    const line = (l: string) => {
      tail.push(l);
      if (tail.length > TAIL_LINES) tail.shift();
      o.onLine?.(l);
    };
    take(child.stdout!);
    take(child.stderr!);
    const kill = () => {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
    };
    o.signal?.addEventListener('abort', kill, { once: true });
    child.once('error', (e) => {
      o.signal?.removeEventListener('abort', kill);
      reject(new Error(`cannot run ${what}: ${e.message} (setpriv and unshare come with util-linux)`));
    });
    child.once('close', (code, sig) => {
      o.signal?.removeEventListener('abort', kill);
      if (o.signal?.aborted) return reject(o.signal.reason instanceof Error ? o.signal.reason : new Error('aborted'));
      if (code === 0) return resolve();
      const how = sig ? `was killed by ${sig}` : `failed with exit code ${code}`;
      reject(new Error(`${what} ${how}. Its last lines:\n${tail.join('\n')}`));
    });
  });
}

/**
 * The argv that runs `cmd` chrooted into `root`, with /proc, /sys and a private /dev/pts mounted for it (inside the
 * sandbox's mount namespace: see above).
 */
export function inChroot(root: string, cmd: string[]): string[] {
  const script = [
    'set -e',
    'r=$1; shift',
    'mount -t proc proc "$r/proc"',
    'mount -t sysfs -o ro sysfs "$r/sys"',
    'mkdir -p "$r/dev/pts"',
    'mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"',
    'exec chroot "$r" "$@"',
  ].join('\n');
  return ['sh', '-c', script, 'sh', root, ...cmd];
}
