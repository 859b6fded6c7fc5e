// A VM request (API, CLI, UI) made into the VM's spec: the image's own settings (memory, vCPUs, display, kernel,
// ready marker, command channel) unless the request says otherwise; a host path (admins only) is checked first.
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Accel } from '../config.ts';
import { OrielError } from '../errors.ts';
import { checkDisk, diskInfo } from './disk.ts';
import { diskFormatOf, hostFile } from './host-paths.ts';
import { builders, findBuiltImage, imageBuilder } from './images/registry.ts';
import type { VmRequest, VmSpec } from './spec.ts';

const DEFAULT_MEMORY_MIB = 256;

/** What a spec falls back on (the manager's options). */
export interface SpecDefaults {
  accel: Accel;
  /** Where built images are. */
  cacheDir: string;
  qemuImgBinary: string;
  /** Folders admins may name disk images, kernels and initrds in (host-paths.ts). */
  imagesDirs?: string[];
  /** The data directory: uploaded images and templates' disks live there (media-spec.ts). */
  dataDir?: string;
}

/** `hostPaths`: the caller is an admin, who may name files inside the configured image folders. */
export async function resolveSpec(req: VmRequest, o: SpecDefaults, hostPaths: boolean): Promise<VmSpec> {
  const spec: VmSpec = {
    memoryMiB: req.memoryMiB ?? DEFAULT_MEMORY_MIB,
    cpus: req.cpus ?? 1,
    display: req.display ?? 'std',
    accel: req.accel ?? o.accel,
    ...(req.hugepages === undefined ? {} : { hugepages: req.hugepages }), // unset: when possible (ram-backing.ts)
    ...(req.opencl ? { opencl: true } : {}),
    ...(req.opencl && req.openclWindowMiB ? { openclWindowMiB: req.openclWindowMiB } : {}),
  };
  const image = req.image && !isAbsolute(req.image) ? findBuiltImage(o.cacheDir, req.image) : undefined;
  // What the image is made for, unless the request says otherwise.
  if (image) {
    spec.memoryMiB = req.memoryMiB ?? image.memoryMiB ?? spec.memoryMiB;
    spec.cpus = req.cpus ?? image.cpus ?? spec.cpus;
    spec.display = req.display ?? image.display ?? spec.display;
  }
  if (req.image) {
    if (isAbsolute(req.image)) {
      const disk = hostFile(req.image, o.imagesDirs ?? [], hostPaths);
      const format = diskFormatOf(disk);
      const info = await diskInfo(o.qemuImgBinary, disk, format).catch((e) => {
        throw badRequestImage((e as Error).message);
      });
      // QEMU would open these too, from names the image chose: never.
      if (info.backingFile || info.dataFile) {
        throw badRequestImage(`${req.image} refers to another file (a backing or data file): use a standalone image`);
      }
      await checkDisk(o.qemuImgBinary, disk, format).catch((e) => {
        throw badRequestImage((e as Error).message);
      });
      Object.assign(spec, { image: 'path', baseDisk: disk, baseFormat: format });
    } else {
      if (!imageBuilder(req.image)) {
        throw badRequestImage(
          `unknown image '${req.image}': known images are ${Object.keys(builders).join(', ')}, or give an absolute path to a disk `
            + 'image, or upload one (oriel image upload)',
        );
      }
      const m = image;
      if (!m) throw badRequestImage(`image '${req.image}' is not built yet: run \`oriel image build ${req.image}\``);
      Object.assign(spec, {
        image: m.name, baseDisk: m.disk, baseFormat: m.disk ? 'qcow2' : undefined,
        kernel: m.kernel, initrd: m.initrd, append: m.append, readyMarker: m.readyMarker, exec: m.exec,
        ...(m.execEnv ? { execEnv: m.execEnv } : {}), ...(m.devices ? { devices: m.devices } : {}),
      });
    }
  }
  if (req.kernel) {
    Object.assign(spec, {
      kernel: hostFile(req.kernel, o.imagesDirs ?? [], hostPaths),
      initrd: hostFile(req.initrd!, o.imagesDirs ?? [], hostPaths),
      append: req.append ?? spec.append ?? 'console=ttyS0',
    });
  } else if (req.append !== undefined) {
    spec.append = req.append;
  }
  return spec;
}

function badRequestImage(msg: string) {
  return new OrielError(400, msg, 'bad_image');
}

/**
 * Checks again, before QEMU opens them, the host files a stored spec names (at every start, and when a restore copies
 * the spec into a new VM): each must still be inside the image cache or a configured image folder (a file swapped
 * for a symlink since, a VM stored by an older version, a folder no longer configured), and a disk given by path
 * must still name no backing or data file.
 */
export async function recheckSpecPaths(name: string, spec: VmSpec, o: SpecDefaults): Promise<void> {
  const refused = () => new OrielError(422, `VM '${name}' uses a host file that is no longer allowed (outside the image `
    + 'cache and the configured image folders, or naming other files): create it again from an image', 'path_refused');
  const dirs = [join(o.cacheDir, 'images'), ...(o.imagesDirs ?? []),
    ...(o.dataDir ? [join(o.dataDir, 'images'), join(o.dataDir, 'vms')] : [])];
  for (const f of [spec.kernel, spec.initrd, spec.baseDisk, spec.cdrom?.file]) {
    if (!f || !existsSync(f)) continue; // a missing file has its own message at start
    try {
      hostFile(f, dirs, true);
    } catch {
      throw refused();
    }
  }
  if (spec.image === 'path' && spec.baseDisk && existsSync(spec.baseDisk)) {
    const info = await diskInfo(o.qemuImgBinary, spec.baseDisk, spec.baseFormat ?? 'raw').catch(() => undefined);
    if (!info || info.backingFile || info.dataFile) throw refused();
  }
}
