// A VM request (API, CLI, UI) made into the VM's spec: the image's own settings (memory, vCPUs, display, kernel,
// ready marker, command channel) unless the request says otherwise; a disk image given by path is checked first.
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { Accel } from '../config.ts';
import { OrielError } from '../errors.ts';
import { checkDisk, diskInfo } from './disk.ts';
import { builders, findBuiltImage } from './images/registry.ts';
import type { VmRequest, VmSpec } from './spec.ts';

const DEFAULT_MEMORY_MIB = 256;

/** What a spec falls back on (the manager's options). */
export interface SpecDefaults {
  accel: Accel;
  /** Where built images are. */
  cacheDir: string;
  qemuImgBinary: string;
}

export async function resolveSpec(req: VmRequest, o: SpecDefaults): Promise<VmSpec> {
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
      if (!existsSync(req.image)) throw badRequestImage(`no disk image at ${req.image}`);
      const info = await diskInfo(o.qemuImgBinary, req.image).catch((e) => {
        throw badRequestImage((e as Error).message);
      });
      await checkDisk(o.qemuImgBinary, req.image, info.format).catch((e) => {
        throw badRequestImage((e as Error).message);
      });
      Object.assign(spec, { image: 'path', baseDisk: req.image, baseFormat: info.format });
    } else {
      if (!builders[req.image]) {
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
    for (const f of [req.kernel, req.initrd!]) {
      if (!isAbsolute(f) || !existsSync(f))
        throw badRequestImage(`kernel and initrd must be absolute paths to existing files: ${f}`);
    }
    Object.assign(spec, {
      kernel: req.kernel,
      initrd: req.initrd,
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
