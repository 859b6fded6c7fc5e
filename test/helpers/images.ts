// Builds (once, cached by recipe in ~/.cache/oriel or ORIEL_CACHE_DIR) the images tests boot.
import { defaultConfig } from '../../src/config.ts';
import { buildTinyImage } from '../../src/vm/images/tiny.ts';
import { buildDesktopImage } from '../../src/vm/images/desktop.ts';
import { buildTinyOpenclImage } from '../../src/vm/images/tiny-opencl.ts';
import type { ImageManifest } from '../../src/vm/images/types.ts';

let tiny: Promise<ImageManifest> | undefined;
export function ensureTinyImage(): Promise<ImageManifest> {
  tiny ??= buildTinyImage({ cacheDir: defaultConfig().cacheDir });
  return tiny;
}

let desktop: Promise<ImageManifest> | undefined;
/**
 * The desktop guest (Debian, Xorg on qxl, openbox, xterm, SPICE agent, qemu-guest-agent). The first build takes
 * about 2.5-4 minutes (debootstrap + apt); later calls find it in the cache in well under a second.
 */
export function ensureDesktopImage(): Promise<ImageManifest> {
  desktop ??= buildDesktopImage({ cacheDir: defaultConfig().cacheDir });
  return desktop;
}

let tinyOpencl: Promise<ImageManifest> | undefined;
/** The tiny guest with glibc, the OpenCL ICD loader, clinfo and Oriel's remoting ICD (src/vm/images/tiny-opencl.ts). */
export function ensureTinyOpenclImage(): Promise<ImageManifest> {
  tinyOpencl ??= buildTinyOpenclImage({ cacheDir: defaultConfig().cacheDir });
  return tinyOpencl;
}
