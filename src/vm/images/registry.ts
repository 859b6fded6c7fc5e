// The images Oriel can build, and the ones already built in the cache. A built image is a folder under
// <cacheDir>/images/ named after the image and its recipe hash, whose manifest.json is written last: an image
// without a manifest is an interrupted build and is never used.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildContext, ImageManifest } from './types.ts';
import { buildTinyImage, tinyRecipeHash } from './tiny.ts';
import { buildDesktopImage, desktopRecipeHash } from './desktop.ts';
import { buildTinyOpenclImage, tinyOpenclRecipeHash } from './tiny-opencl.ts';

export interface ImageBuilder {
  name: string;
  description: string;
  /** The recipe hash of the image as it would be built now (may ask apt: cached by the builder). */
  recipe(cacheDir: string): string;
  build(ctx: BuildContext): Promise<ImageManifest>;
}

export const builders: Record<string, ImageBuilder> = {
  tiny: {
    name: 'tiny',
    description: 'Debian kernel + busybox initramfs: boots in seconds under TCG, framebuffer console, command shell',
    recipe: () => tinyRecipeHash(),
    build: buildTinyImage,
  },
  'tiny-opencl': {
    name: 'tiny-opencl',
    description: 'the tiny image with glibc, the OpenCL ICD loader, clinfo and Oriel\'s remoting ICD: for `--opencl` VMs',
    recipe: () => tinyOpenclRecipeHash(),
    build: buildTinyOpenclImage,
  },
  desktop: {
    name: 'desktop',
    description:
      'Debian bookworm with Xorg (qxl), openbox and xterm, the SPICE agent, SPICE WebDAV and qemu-guest-agent; ~3.5 min to build',
    recipe: desktopRecipeHash,
    build: buildDesktopImage,
  },
};

/** The builder of the image `name`, if there is one (own keys only: `constructor` names no image). */
export function imageBuilder(name: string): ImageBuilder | undefined {
  return Object.hasOwn(builders, name) ? builders[name] : undefined;
}

export function imageDir(cacheDir: string, name: string, recipe: string): string {
  return join(cacheDir, 'images', `${name}-${recipe.slice(0, 16)}`);
}

/** The manifest of the image built from the current recipe, or undefined if it is not built. */
export function findBuiltImage(cacheDir: string, name: string): ImageManifest | undefined {
  const b = imageBuilder(name);
  if (!b) return undefined;
  const file = join(imageDir(cacheDir, name, b.recipe(cacheDir)), 'manifest.json');
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as ImageManifest;
}

export interface ImageListing {
  name: string;
  description: string;
  built: boolean;
  recipe: string;
  builtAt?: string;
  sizeBytes?: number;
}

export function listImages(cacheDir: string): ImageListing[] {
  return Object.values(builders).map((b) => {
    const m = findBuiltImage(cacheDir, b.name);
    return {
      name: b.name,
      description: b.description,
      built: !!m,
      recipe: b.recipe(cacheDir),
      builtAt: m?.builtAt,
      sizeBytes: m?.sizeBytes,
    };
  });
}

/** Manifests of older recipes still in the cache (kept: VMs created from them still use their files). */
export function staleImageDirs(cacheDir: string): string[] {
  const root = join(cacheDir, 'images');
  if (!existsSync(root)) return [];
  const current = new Set(Object.values(builders).map((b) => imageDir(cacheDir, b.name, b.recipe(cacheDir))));
  return readdirSync(root).map((d) => join(root, d)).filter((d) => !current.has(d));
}
