// A VM request (API, CLI, UI) made into the VM's spec: the image's own settings (memory, vCPUs, display, kernel,
// ready marker, command channel) unless the request says otherwise; a host path (admins only) is checked first.
import { isAbsolute } from 'node:path';
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
}

/** `hostPaths`: the caller is an admin, who may name files inside the configured image folders. */
export async function resolveSpec(req: VmRequest, o: SpecDefaults, hostPaths: boolean): Promise<VmSpec> {
  const spec: VmSpec = {
    memoryMiB: req.memoryMiB ?? DEFAULT_MEMORY_MIB,
    cpus: req.cpus ?? 1,
    display: req.display ?? 'std',
    accel: req.accel ?? o.accel,
    ...(req.hugepages ? { hugepages: true } : {}),
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
          `unknown image '${req.image}': known images are ${Object.keys(builders).join(', ')}, or give an absolute path to a disk image`,
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
