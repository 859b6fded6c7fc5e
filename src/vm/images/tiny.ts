// The "tiny" guest: Debian's kernel (uncompressed: see bzimage.ts) and a static busybox in a gzip initramfs, plus a
// blank 64 MiB qcow2 base disk.
// It boots under TCG in seconds, draws on its framebuffer console, prints READY_MARKER on ttyS0 and serves the
// GuestShell protocol on ttyS1 (the init script, tiny-init.sh, says how).
import { randomBytes, createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { defaultConfig } from '../../config.ts';
import { writeCpioGz, type CpioEntry } from './cpio.ts';
import { extractVmlinux } from './bzimage.ts';
import { aptCandidates, extractDeb, fetchDeb } from './deb.ts';
import { moduleClosure } from './kmod.ts';
import { publish, readManifest, removeAbandoned } from './cache.ts';
import type { BuildContext, ImageManifest } from './types.ts';

const run = promisify(execFile);

/** Bump when the builder's output changes for the same packages and init script. */
const BUILDER_VERSION = 1;
const READY_MARKER = 'ORIEL-READY';
const DISK_SIZE = '64M';
/**
 * Loaded by the init script; dependencies come along (kmod.ts). Pointing devices, for console input tests: psmouse
 * (QEMU's PS/2 mouse, SPICE server mouse mode; /dev/input/mice comes from the built-in mousedev) and xhci_pci +
 * usbhid + hid_generic (a `-device usb-tablet`, which lets SPICE switch to client mouse mode, absolute positions).
 */
const MODULES = [
  'virtio_pci',
  'virtio_blk',
  'virtio_console',
  'virtio_net',
  'bochs',
  'qxl',
  'button',
  'evdev',
  'psmouse',
  'xhci_pci',
  'usbhid',
  'hid_generic',
];
// Both consoles get kernel messages; the last console= is /dev/console, so ttyS0 (serial.log) gets the init's
// output. panic=-1: reboot at once if PID 1 ever dies, rather than hang. quiet keeps the slow UART out of boot.
const APPEND = 'console=tty0 console=ttyS0 panic=-1 quiet';
const INIT_SCRIPT = readFileSync(new URL('./tiny-init.sh', import.meta.url), 'utf8');

interface Pkg { name: string; version: string }

/** A tiny image with more in its initramfs (tiny-opencl.ts): Debian packages unpacked whole (docs left out), and
 * files made at build time. Its name and recipe make its own folder in the cache. */
export interface TinyVariant {
  name: string;
  packages: Pkg[];
  /** Whatever else changes the output (hashes of sources built into it). */
  recipe: unknown;
  /** Makes files under `root` (a scratch folder), all of which go into the initramfs. */
  make(root: string, signal?: AbortSignal): Promise<void>;
}
let packages: { kernel: Pkg; busybox: Pkg } | undefined;

/** The kernel image package linux-image-amd64 currently points to, and busybox-static, at apt's candidate versions. */
export function tinyPackages(): { kernel: Pkg; busybox: Pkg } {
  if (packages) return packages;
  const [meta, busybox] = aptCandidates(['linux-image-amd64', 'busybox-static']);
  const dep = meta!.depends.match(/(linux-image-6\.1[^\s,]*-amd64) \(= ([^)\s]+)\)/);
  if (!dep)
    throw new Error(
      `linux-image-amd64 ${meta!.version} does not depend on a linux-image-6.1*-amd64 package (Depends: ${meta!.depends})`,
    );
  packages = {
    kernel: { name: dep[1]!, version: dep[2]! },
    busybox: { name: busybox!.name, version: busybox!.version },
  };
  return packages;
}

/** Hex sha256 over everything the image is made from. Computed once per process (it asks apt for versions). */
export function tinyRecipeHash(variant?: TinyVariant): string {
  const p = tinyPackages();
  const recipe = {
    ...(variant ? { variant: variant.name, extra: variant.packages, extraRecipe: variant.recipe } : {}),
    builder: BUILDER_VERSION,
    packages: [p.kernel, p.busybox],
    init: INIT_SCRIPT,
    modules: MODULES,
    append: APPEND,
    marker: READY_MARKER,
    disk: DISK_SIZE,
  };
  return createHash('sha256').update(JSON.stringify(recipe)).digest('hex');
}

const inflight = new Map<string, Promise<ImageManifest>>();

/** Builds the tiny image into <cacheDir>/images/tiny-<recipe>/, or returns the one already there. */
export function buildTinyImage(ctx: BuildContext, variant?: TinyVariant): Promise<ImageManifest> {
  let recipe: string;
  try {
    recipe = tinyRecipeHash(variant);
  } catch (e) {
    return Promise.reject(e);
  }
  const dir = join(ctx.cacheDir, 'images', `${variant?.name ?? 'tiny'}-${recipe.slice(0, 16)}`);
  const built = readManifest(dir);
  if (built) return Promise.resolve(built);
  let p = inflight.get(dir);
  if (!p) {
    p = build(ctx, recipe, dir, variant).finally(() => inflight.delete(dir));
    inflight.set(dir, p);
  }
  return p;
}

async function build(ctx: BuildContext, recipe: string, dir: string, variant?: TinyVariant): Promise<ImageManifest> {
  const { signal } = ctx;
  const total = 6 + (variant ? 1 : 0);
  let done = 0;
  const step = (stage: string, line: string) => {
    ctx.progress?.(done++, total, stage);
    ctx.log?.(line);
    signal?.throwIfAborted();
  };
  const tmpRoot = join(ctx.cacheDir, 'tmp');
  removeAbandoned(tmpRoot);
  // Everything is made in a private folder next to the cache, then renamed into place whole, manifest included:
  // an interrupted build leaves no folder that looks like an image.
  const tmp = join(tmpRoot, `${variant?.name ?? 'tiny'}-${process.pid}-${randomBytes(4).toString('hex')}`);
  const out = join(tmp, 'image');
  mkdirSync(out, { recursive: true });
  try {
    const { kernel, busybox } = tinyPackages();
    const debs = join(ctx.cacheDir, 'debs');
    step('download', `fetching ${kernel.name} ${kernel.version}`);
    const kernelDeb = await fetchDeb(kernel.name, kernel.version, debs, signal);
    step('download', `fetching ${busybox.name} ${busybox.version}`);
    const busyboxDeb = await fetchDeb(busybox.name, busybox.version, debs, signal);

    step('extract', `extracting ${kernelDeb}`);
    const k = join(tmp, 'kernel');
    await extractDeb(kernelDeb, k, signal);
    const releases = readdirSync(join(k, 'lib/modules'));
    if (releases.length !== 1)
      throw new Error(`expected one kernel release in ${kernel.name}, found: ${releases.join(', ')}`);
    const release = releases[0]!;
    await extractVmlinux(join(k, 'boot', `vmlinuz-${release}`), join(out, 'vmlinux'), signal);
    step('extract', `extracting ${busyboxDeb}`);
    const b = join(tmp, 'busybox');
    await extractDeb(busyboxDeb, b, signal);

    const extra = join(tmp, 'extra');
    if (variant) {
      step('extra', `adding ${variant.packages.map((x) => x.name).join(', ')} and built files`);
      for (const pkg of variant.packages)
        await extractDeb(await fetchDeb(pkg.name, pkg.version, debs, signal), extra, signal);
      for (const d of ['usr/share/doc', 'usr/share/man', 'usr/share/locale', 'usr/share/lintian', 'usr/share/info'])
        rmSync(join(extra, d), { recursive: true, force: true });
      await variant.make(extra, signal);
    }

    step('initramfs', `making the initramfs for kernel ${release}`);
    await writeCpioGz(
      [
        ...initramfsEntries(join(k, 'lib/modules', release), release, join(b, 'bin/busybox')),
        ...(variant ? treeEntries(extra) : []),
      ],
      join(out, 'initrd.img'),
      signal,
    );
    rmSync(k, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });

    step('disk', `creating the ${DISK_SIZE} base disk`);
    await run(defaultConfig().qemuImgBinary, ['create', '-q', '-f', 'qcow2', join(out, 'disk.qcow2'), DISK_SIZE], {
      signal,
    });

    const manifest: ImageManifest = {
      name: variant?.name ?? 'tiny',
      recipe,
      builtAt: new Date().toISOString(),
      dir,
      kernel: join(dir, 'vmlinux'),
      initrd: join(dir, 'initrd.img'),
      append: APPEND,
      disk: join(dir, 'disk.qcow2'),
      readyMarker: READY_MARKER,
      exec: 'serial-shell',
      sizeBytes: readdirSync(out).reduce((n, f) => n + statSync(join(out, f)).size, 0),
    };
    writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    signal?.throwIfAborted();
    const published = publish(out, dir) ?? manifest;
    ctx.progress?.(total, total, 'done');
    return published;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function* initramfsEntries(modulesDir: string, release: string, busybox: string): Generator<CpioEntry> {
  const mods = moduleClosure(modulesDir, MODULES);
  const modRoot = `lib/modules/${release}`;
  const dirs = new Set(['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'etc', 'lib', 'lib/modules', modRoot]);
  for (const f of mods.files) for (let d = dirname(`${modRoot}/${f}`); !dirs.has(d); d = dirname(d)) dirs.add(d);
  for (const d of [...dirs].sort()) yield { type: 'dir', path: d };
  yield { type: 'file', path: 'init', data: Buffer.from(INIT_SCRIPT), mode: 0o755 };
  yield { type: 'file', path: 'bin/busybox', data: readFileSync(busybox), mode: 0o755 };
  yield { type: 'symlink', path: 'bin/sh', target: 'busybox' };
  yield { type: 'file', path: 'etc/oriel-tiny.conf', data: Buffer.from(`MODULES='${MODULES.join(' ')}'\nREADY_MARKER='${READY_MARKER}'\n`) };
  yield { type: 'file', path: `${modRoot}/modules.dep`, data: Buffer.from(mods.modulesDep) };
  for (const f of mods.files) yield { type: 'file', path: `${modRoot}/${f}`, data: readFileSync(join(modulesDir, f)) };
}

/** Everything under `root` (folders first), skipping what the base initramfs already has (its top folders). */
function* treeEntries(root: string, rel = ''): Generator<CpioEntry> {
  for (const name of readdirSync(join(root, rel)).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(root, path));
    if (st.isSymbolicLink()) yield { type: 'symlink', path, target: readlinkSync(join(root, path)) };
    else if (st.isDirectory()) {
      if (!BASE_DIRS.has(path)) yield { type: 'dir', path, mode: st.mode & 0o7777 };
      yield* treeEntries(root, path);
    } else if (st.isFile()) yield { type: 'file', path, data: readFileSync(join(root, path)), mode: st.mode & 0o7777 };
  }
}
const BASE_DIRS = new Set(['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'etc', 'lib']);
