// The "desktop" guest: Debian bookworm (debootstrap minbase + the packages below, no recommends) with Xorg on
// QXL, openbox and an xterm, logged in automatically as `user`; the SPICE agent (spice-vdagent), Oriel's SPICE
// WebDAV daemon (oriel-webdavd, compiled here: webdavd.ts; it also fetches file drops), qemu-guest-agent (how `oriel
// vm exec` runs commands) and ALSA's tools for the sound card (VMs get an HDA card on SPICE: manifest device
// 'spice-audio'). One ext4 file system with no partition table in a qcow2 disk; the guest's own kernel and a small
// initramfs are booted directly.
//
// The build (about 3.5 minutes here, most of it dpkg) runs in <cacheDir>/tmp/desktop-<pid>-<random>/; every command
// that mounts or may start daemons runs in a private mount and PID namespace (sandbox.ts), so an abort, a failure or
// a killed server leaves no mount and no process behind. Downloaded .deb files are kept in <cacheDir>/debs/desktop
// (pruned to the last build's set), so a rebuild downloads only what changed.
//
// The guest-side files (session, readiness, resize hook) are in ./desktop/; what the session does is described there.
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  ftruncateSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { defaultConfig } from '../../config.ts';
import { publish, readManifest, removeAbandoned, removeTree, withBuildLock } from './cache.ts';
import { aptClosure, aptPackageIndexes, type AptIndex } from './deb.ts';
import { BUILD_ENV, inChroot, runSandboxed } from './sandbox.ts';
import type { BuildContext, ImageManifest } from './types.ts';
import { buildWebdavd, webdavdRecipe } from './webdavd.ts';

const run = promisify(execFile);

/** Bump when the builder's output changes for the same packages and shipped files. */
const BUILDER_VERSION = 1;
const SUITE = 'bookworm';
/** Installed with --no-install-recommends on top of debootstrap's minbase (measured: ~320 packages, ~1.1 GB). */
export const DESKTOP_PACKAGES = [
  'linux-image-amd64', 'systemd-sysv', 'udev', 'dbus', 'libpam-systemd', 'procps', 'kmod',
  'xserver-xorg-core', 'xserver-xorg-video-qxl', 'xserver-xorg-input-libinput', 'xinit', 'xauth', 'xfonts-base',
  'x11-xserver-utils', 'x11-utils', 'xterm', 'openbox', 'xclip',
  'spice-vdagent', 'qemu-guest-agent', 'davfs2', 'curl',
  // The network card (VMs on an Oriel network get a virtio-net card): ifupdown brings it up by DHCP when udev sees it,
  // as a Debian install does; dhclient writes the DNS server the network's DHCP gives into /etc/resolv.conf.
  'ifupdown', 'isc-dhcp-client',
  // Sound (the VM's HDA card on SPICE): aplay, arecord, amixer, speaker-test; plain ALSA, no sound server.
  'alsa-utils',
];
/**
 * What debootstrap's minbase installs (bookworm's Priority: required, and apt): asked for in the recipe's
 * simulation too, so that it resolves like the real build, where they are already there (e.g. usr-is-merged rather
 * than usrmerge and perl).
 */
const MINBASE = [
  'apt', 'base-files', 'base-passwd', 'bash', 'bsdutils', 'dash', 'debianutils', 'diffutils', 'e2fsprogs', 'findutils',
  'grep', 'gzip', 'hostname', 'libc-bin', 'login', 'mawk', 'ncurses-base', 'ncurses-bin', 'sed', 'tzdata',
  'usr-is-merged', 'util-linux',
];
/** What the initramfs loads to mount the root file system (MODULES=list; see desktop/prepare.sh). */
const INITRD_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_scsi', 'ext4', 'crc32c_generic'];
// Only ttyS0 as console: the screen (tty1) is the desktop's. quiet keeps the boot log short on the serial line.
const APPEND = 'root=/dev/vda rw console=ttyS0 quiet';
export const DESKTOP_READY_MARKER = 'ORIEL-DESKTOP-READY';
/** Size of the guest's file system (sparse: only what is written takes space in the qcow2). */
const DISK_MIB = 3072;
/** Environment of commands `oriel vm exec` runs (the guest agent gives them no other): they can reach the desktop. */
const EXEC_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LANG: 'C.UTF-8',
  DISPLAY: ':0',
  XAUTHORITY: '/home/user/.Xauthority',
};

const FILES_DIR = new URL('./desktop/', import.meta.url);
/** The shipped guest files: name → content (part of the recipe). */
const FILES: Record<string, string> = Object.fromEntries(
  readdirSync(FILES_DIR).sort().map((f) => [f, readFileSync(new URL(f, FILES_DIR), 'utf8')]),
);
/**
 * Setup scripts run at build time; every other shipped file is installed as
 * /usr/local/lib/oriel/<name without .sh>.
 */
const SETUP_SCRIPTS = new Set(['prepare.sh', 'configure.sh']);

// ---- recipe ----

let closureMemo: { key: string; packages: { name: string; version: string }[] } | undefined;

/**
 * The packages (and versions) the build installs, as apt on this host resolves them. The simulation is slow, so
 * its answer is kept in <cacheDir>/recipes/desktop-packages.json, keyed by the state of apt's lists and sources:
 * recomputed only after an `apt-get update` (or a change of sources).
 */
function desktopClosure(cacheDir: string): { name: string; version: string }[] {
  const key = aptStateKey();
  if (closureMemo?.key === key) return closureMemo.packages;
  const file = join(cacheDir, 'recipes', 'desktop-packages.json');
  try {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as typeof closureMemo;
    if (saved?.key === key && Array.isArray(saved.packages)) return (closureMemo = saved).packages;
  } catch { /* none yet, or unreadable: compute */ }
  const packages = aptClosure([...MINBASE, ...DESKTOP_PACKAGES]);
  closureMemo = { key, packages };
  try {
    mkdirSync(join(cacheDir, 'recipes'), { recursive: true });
    writeFileSync(`${file}.${process.pid}`, JSON.stringify(closureMemo) + '\n');
    renameSync(`${file}.${process.pid}`, file);
  } catch { /* a read-only cache only costs the next process the simulation again */ }
  return packages;
}

/** Identifies what apt's answer depends on: our package list, the lists it reads (name, size, time), its sources. */
function aptStateKey(): string {
  const h = createHash('sha256').update(JSON.stringify([MINBASE, DESKTOP_PACKAGES]));
  const lists = '/var/lib/apt/lists';
  if (existsSync(lists)) {
    for (const f of readdirSync(lists).sort()) {
      const st = statSync(join(lists, f));
      if (st.isFile()) h.update(`${f} ${st.size} ${st.mtimeMs}\n`);
    }
  }
  for (const d of [
    '/etc/apt/sources.list',
    '/etc/apt/sources.list.d',
    '/etc/apt/preferences',
    '/etc/apt/preferences.d',
  ]) {
    if (!existsSync(d)) continue;
    const files = statSync(d).isDirectory() ? readdirSync(d).sort().map((f) => join(d, f)) : [d];
    for (const f of files) if (statSync(f).isFile()) h.update(`${f}\n`).update(readFileSync(f));
  }
  return h.digest('hex');
}

/** Hex sha256 over everything the image is made from. */
export function desktopRecipeHash(cacheDir = defaultConfig().cacheDir): string {
  const recipe = {
    builder: BUILDER_VERSION, suite: SUITE, variant: 'minbase', packages: desktopClosure(cacheDir), files: FILES,
    webdavd: webdavdRecipe(), modules: INITRD_MODULES, append: APPEND, marker: DESKTOP_READY_MARKER, diskMiB: DISK_MIB,
    execEnv: EXEC_ENV,
  };
  return createHash('sha256').update(JSON.stringify(recipe)).digest('hex');
}

// ---- build ----

const inflight = new Map<string, Promise<ImageManifest>>();

/** Builds the desktop image into <cacheDir>/images/desktop-<recipe>/, or returns the one already there. */
export function buildDesktopImage(ctx: BuildContext): Promise<ImageManifest> {
  let recipe: string;
  try {
    recipe = desktopRecipeHash(ctx.cacheDir);
  } catch (e) {
    return Promise.reject(e);
  }
  const dir = join(ctx.cacheDir, 'images', `desktop-${recipe.slice(0, 16)}`);
  const built = readManifest(dir);
  if (built) return Promise.resolve(built);
  let p = inflight.get(dir);
  if (!p) {
    // One build at a time across processes too (they would share the .deb cache); a waiter then finds the image.
    p = withBuildLock(ctx.cacheDir, 'desktop', async () => readManifest(dir) ?? build(ctx, recipe, dir), {
      signal: ctx.signal,
      onWait: (pid) => ctx.log?.(`waiting for another build of the desktop image (process ${pid}) to finish`),
    }).finally(() => inflight.delete(dir));
    inflight.set(dir, p);
  }
  return p;
}

/** Stages with their share of the progress bar (roughly their share of the time). */
const STAGES = {
  debootstrap: [0, 35],
  packages: [35, 86],
  configure: [86, 89],
  filesystem: [89, 96],
  qcow2: [96, 100],
} as const;
type Stage = keyof typeof STAGES;

class Progress {
  private stage: Stage = 'debootstrap';
  constructor(private readonly ctx: BuildContext) {}
  enter(stage: Stage, line: string): void {
    this.ctx.signal?.throwIfAborted();
    this.stage = stage;
    this.ctx.log?.(line);
    this.at(0);
  }
  /** fraction: how far the current stage is (0..1). */
  at(fraction: number): void {
    const [a, b] = STAGES[this.stage];
    this.ctx.progress?.(Math.round(a + (b - a) * Math.min(1, Math.max(0, fraction))), 100, this.stage);
  }
}

async function build(ctx: BuildContext, recipe: string, dir: string): Promise<ImageManifest> {
  const { signal } = ctx;
  const started = Date.now();
  const progress = new Progress(ctx);
  const tmpRoot = join(ctx.cacheDir, 'tmp');
  removeAbandoned(tmpRoot);
  const tmp = join(tmpRoot, `desktop-${process.pid}-${randomBytes(4).toString('hex')}`);
  const root = join(tmp, 'root');
  const out = join(tmp, 'image');
  const debs = join(ctx.cacheDir, 'debs', 'desktop');
  mkdirSync(root, { recursive: true });
  mkdirSync(out);
  mkdirSync(debs, { recursive: true });
  try {
    await requireTools();
    const indexes = await aptPackageIndexes();
    const mirror = indexes.find((i) => i.release === SUITE && i.component === 'main');
    if (!mirror) {
      throw new Error(
        `apt on this host has no package list for Debian ${SUITE} main (the desktop image is built from it): add it to apt's sources and run apt-get update`,
      );
    }

    progress.enter('debootstrap', `debootstrap --variant=minbase ${SUITE} from ${mirror.site}`);
    await runSandboxed(['debootstrap', '--variant=minbase', `--cache-dir=${debs}`, SUITE, root, mirror.site], {
      signal, what: 'debootstrap', onLine: debootstrapProgress(progress, ctx),
    });

    progress.enter('packages', `installing ${DESKTOP_PACKAGES.length} packages and their dependencies`);
    const suites = indexes.filter(
      (i) => i.component === 'main' && (i.release === SUITE || i.release.startsWith(`${SUITE}-`)),
    );
    useHostLists(root, suites);
    const setup = join(root, 'tmp/oriel-setup');
    mkdirSync(setup, { recursive: true });
    const lib = join(root, 'usr/local/lib/oriel');
    mkdirSync(lib, { recursive: true });
    for (const [name, text] of Object.entries(FILES)) {
      writeFileSync(SETUP_SCRIPTS.has(name) ? join(setup, name) : join(lib, name.replace(/\.sh$/, '')), text, {
        mode: 0o755,
      });
    }
    await runSandboxed(inChroot(root, ['/bin/sh', '/tmp/oriel-setup/prepare.sh', ...INITRD_MODULES]), {
      signal,
      what: 'prepare.sh',
      onLine: ctx.log,
    });
    const archives = join(root, 'var/cache/apt/archives');
    linkCachedDebs(debs, archives);
    // Exactly the recipe's versions, in one transaction: the new packages, and the upgrades (from bookworm-updates
    // and -security) of what debootstrap installed from bookworm. Then apt is told which ones were only dependencies.
    const closure = desktopClosure(ctx.cacheDir);
    await runSandboxed(
      inChroot(root, [
        'apt-get',
        'install',
        '-y',
        '-q',
        '--no-install-recommends',
        '-o',
        'Dpkg::Options::=--force-confold',
        ...closure.map((p) => `${p.name}=${p.version}`),
      ]),
      {
        signal,
        what: 'apt-get install',
        onLine: aptProgress(progress, ctx),
      },
    ).catch(explainFetchError);
    const explicit = new Set([...MINBASE, ...DESKTOP_PACKAGES]);
    await runSandboxed(
      inChroot(root, ['apt-mark', 'auto', ...closure.map((p) => p.name).filter((n) => !explicit.has(n))]),
      {
        signal,
        what: 'apt-mark',
      },
    );
    const installed = await installedPackages(root, signal);
    keepDebs(archives, debs, installed);
    writeFileSync(join(out, 'packages.txt'), installed.map((p) => `${p.name} ${p.version}`).join('\n') + '\n');

    progress.enter('configure', 'configuring the desktop session');
    mkdirSync(join(root, 'usr/local/sbin'), { recursive: true });
    await buildWebdavd(join(root, 'usr/local/sbin/oriel-webdavd'), signal);
    await runSandboxed(inChroot(root, ['/bin/sh', '/tmp/oriel-setup/configure.sh']), {
      signal, what: 'configure.sh', onLine: ctx.log, env: { ...BUILD_ENV, READY_MARKER: DESKTOP_READY_MARKER },
    });
    const boot = join(root, 'boot');
    const kernels = readdirSync(boot).filter((f) => f.startsWith('vmlinuz-'));
    if (kernels.length !== 1)
      throw new Error(`expected one kernel in the guest's /boot, found: ${kernels.join(', ') || 'none'}`);
    const release = kernels[0]!.slice('vmlinuz-'.length);
    if (!existsSync(join(boot, `initrd.img-${release}`)))
      throw new Error(`the guest has no initramfs for kernel ${release} (update-initramfs failed?)`);
    copyFileSync(join(boot, `vmlinuz-${release}`), join(out, 'vmlinuz'));
    copyFileSync(join(boot, `initrd.img-${release}`), join(out, 'initrd.img'));

    progress.enter('filesystem', `making a ${DISK_MIB} MiB ext4 file system from the tree`);
    const raw = join(tmp, 'root.img');
    const fd = openSync(raw, 'w');
    try { ftruncateSync(fd, DISK_MIB * 2 ** 20); } finally { closeSync(fd); }
    await tool('mkfs.ext4', ['-q', '-F', '-L', 'oriel-root', '-d', root, raw], signal);
    removeTree(root); // frees ~1.2 GB before the copy below

    progress.enter('qcow2', 'converting to qcow2');
    await tool(defaultConfig().qemuImgBinary, ['convert', '-O', 'qcow2', raw, join(out, 'disk.qcow2')], signal);
    rmSync(raw, { force: true });

    const manifest: ImageManifest = {
      name: 'desktop',
      recipe,
      builtAt: new Date().toISOString(),
      dir,
      kernel: join(dir, 'vmlinuz'),
      initrd: join(dir, 'initrd.img'),
      append: APPEND,
      disk: join(dir, 'disk.qcow2'),
      readyMarker: DESKTOP_READY_MARKER,
      exec: 'guest-agent',
      execEnv: EXEC_ENV,
      display: 'qxl',
      devices: ['guest-agent', 'spice-webdav', 'spice-audio'],
      memoryMiB: 1024,
      cpus: 2,
      sizeBytes: readdirSync(out).reduce((n, f) => n + statSync(join(out, f)).size, 0),
    };
    writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    signal?.throwIfAborted();
    const published = publish(out, dir) ?? manifest;
    ctx.log?.(
      `built in ${Math.round((Date.now() - started) / 1000)} s: ${installed.length} packages, ${(manifest.sizeBytes / 2 ** 20).toFixed(0)} MiB`,
    );
    ctx.progress?.(100, 100, 'done');
    return published;
  } finally {
    removeTree(tmp);
  }
}

async function requireTools(): Promise<void> {
  const missing: string[] = [];
  for (const t of ['debootstrap', 'mkfs.ext4', 'setpriv', 'unshare', 'chroot']) {
    try {
      await run('sh', ['-c', `command -v ${t}`], { env: BUILD_ENV });
    } catch {
      missing.push(t);
    }
  }
  if (missing.length)
    throw new Error(
      `building the desktop image needs ${missing.join(', ')}: run scripts/bootstrap.sh (it installs debootstrap and e2fsprogs)`,
    );
  if (process.getuid?.() !== 0)
    throw new Error('building the desktop image needs root (debootstrap, chroot and mounts in a private namespace)');
}

async function tool(cmd: string, args: string[], signal?: AbortSignal): Promise<void> {
  try {
    await run(cmd, args, { signal, env: BUILD_ENV, maxBuffer: 16 << 20 });
  } catch (e) {
    if (signal?.aborted) throw e;
    const x = e as { stderr?: string; message: string };
    throw new Error(`${basename(cmd)} failed: ${(x.stderr?.trim() || x.message).split('\n').slice(-5).join('\n')}`);
  }
}

/**
 * Points the chroot's apt at the same archives as this host's and gives it the host's lists, so it resolves exactly
 * the versions the recipe was computed from, without downloading the lists again.
 */
function useHostLists(root: string, indexes: AptIndex[]): void {
  const lines = indexes.map((i) => `deb ${i.site} ${i.release} main`);
  writeFileSync(join(root, 'etc/apt/sources.list'), [...new Set(lines)].join('\n') + '\n');
  const dest = join(root, 'var/lib/apt/lists');
  mkdirSync(dest, { recursive: true });
  for (const i of indexes) {
    // The index and its suite's Release/InRelease files: <site>_dists_<release>_...
    const name = basename(i.file);
    const at = name.indexOf(`_dists_${i.release}_`);
    if (at < 0) throw new Error(`unexpected name of apt's list file ${i.file} (no _dists_${i.release}_ in it)`);
    const prefix = name.slice(0, at + `_dists_${i.release}_`.length);
    for (const f of readdirSync(dirname(i.file))) {
      if (f.startsWith(prefix)) copyFileSync(join(dirname(i.file), f), join(dest, f));
    }
  }
}

/**
 * Hard-links the .deb files kept from earlier builds into the chroot's apt cache (apt then downloads only the
 * rest).
 */
function linkCachedDebs(debs: string, archives: string): void {
  mkdirSync(join(archives, 'partial'), { recursive: true });
  for (const f of readdirSync(debs)) {
    if (!f.endsWith('.deb') || existsSync(join(archives, f))) continue;
    try {
      linkSync(join(debs, f), join(archives, f));
    } catch {
      copyFileSync(join(debs, f), join(archives, f));
    }
  }
}

interface Installed { name: string; version: string; arch: string }

async function installedPackages(root: string, signal?: AbortSignal): Promise<Installed[]> {
  const lines: string[] = [];
  await runSandboxed(
    inChroot(root, ['dpkg-query', '-W', '-f', '${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\\n']),
    {
      signal,
      what: 'dpkg-query',
      onLine: (l) => lines.push(l),
    },
  );
  return lines.map((l) => l.trim().split(/\s+/)).filter((f) => f[0] === 'ii' && f.length === 4)
    .map(([, name, version, arch]) => ({ name: name!, version: version!, arch: arch! }));
}

/** Moves the chroot's .deb files into the cache and keeps there only those of the packages now installed. */
function keepDebs(archives: string, debs: string, installed: Installed[]): void {
  const wanted = new Set(installed.map((p) => `${p.name}_${p.version.replace(':', '%3a')}_${p.arch}.deb`));
  for (const f of readdirSync(archives)) {
    if (!f.endsWith('.deb')) continue;
    if (wanted.has(f) && !existsSync(join(debs, f))) renameSync(join(archives, f), join(debs, f));
    else rmSync(join(archives, f), { force: true });
  }
  for (const f of readdirSync(debs)) if (f.endsWith('.deb') && !wanted.has(f)) rmSync(join(debs, f), { force: true });
}

function explainFetchError(e: Error): never {
  if (/Failed to fetch .*(404|Not Found)/s.test(e.message)) {
    throw new Error(
      `${e.message}\nThis host's package lists are older than the archive: run \`apt-get update\` and build again.`,
    );
  }
  throw e;
}

/** debootstrap's lines → progress (about 90 packages are retrieved, unpacked and configured) and a short log. */
function debootstrapProgress(progress: Progress, ctx: BuildContext): (line: string) => void {
  const EXPECTED = 90;
  const n = { Retrieving: 0, Validating: 0, Extracting: 0, Unpacking: 0, Configuring: 0 };
  return (line) => {
    const m = /^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) /.exec(line);
    if (m) {
      n[m[1] as keyof typeof n]++;
      const work = n.Retrieving * 1 + n.Validating * 0.2 + n.Extracting * 0.8 + n.Unpacking * 1 + n.Configuring * 1;
      progress.at(work / (EXPECTED * 4));
    } else if (/^[IWE]: /.test(line)) {
      ctx.log?.(line);
    }
  };
}

/** apt-get's lines → progress (unpacking and setting up, most of the time; downloads take seconds) and a short log. */
function aptProgress(progress: Progress, ctx: BuildContext): (line: string) => void {
  let total = 0, unpacked = 0, setUp = 0;
  return (line) => {
    const summary = /(\d+) upgraded, (\d+) newly installed/.exec(line);
    if (summary) total = Number(summary[1]) + Number(summary[2]);
    if (/^Unpacking /.test(line)) unpacked++;
    else if (/^Setting up /.test(line)) setUp++;
    else if (summary || /^(Need to get|Fetched|E:|W:)|^update-initramfs/.test(line)) ctx.log?.(line);
    if (total) progress.at((unpacked * 0.45 + setUp * 0.55) / total);
  };
}
