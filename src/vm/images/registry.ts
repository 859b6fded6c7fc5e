// The images Oriel can build, and the ones already built in the cache. A built image is a folder under
// <cacheDir>/images/ named after the image and its recipe hash, whose manifest.json is written last: an image
// without a manifest is an interrupted build and is never used.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuildContext, ImageManifest } from './types.ts';
import { buildTinyImage, tinyRecipeHash } from './tiny.ts';

export interface ImageBuilder {
  name: string;
  description: string;
  recipe(): string;
  build(ctx: BuildContext): Promise<ImageManifest>;
}

export const builders: Record<string, ImageBuilder> = {
  tiny: {
    name: 'tiny',
    description: 'Debian kernel + busybox initramfs: boots in seconds under TCG, framebuffer console, command shell',
    recipe: tinyRecipeHash,
    build: buildTinyImage,
  },
};

export function imageDir(cacheDir: string, name: string, recipe: string): string {
  return join(cacheDir, 'images', `${name}-${recipe.slice(0, 16)}`);
}

/** The manifest of the image built from the current recipe, or undefined if it is not built. */
export function findBuiltImage(cacheDir: string, name: string): ImageManifest | undefined {
  const b = builders[name];
  if (!b) return undefined;
  const file = join(imageDir(cacheDir, name, b.recipe()), 'manifest.json');
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
    return { name: b.name, description: b.description, built: !!m, recipe: b.recipe(), builtAt: m?.builtAt, sizeBytes: m?.sizeBytes };
  });
}

/** Manifests of older recipes still in the cache (kept: VMs created from them still use their files). */
export function staleImageDirs(cacheDir: string): string[] {
  const root = join(cacheDir, 'images');
  if (!existsSync(root)) return [];
  const current = new Set(Object.values(builders).map((b) => imageDir(cacheDir, b.name, b.recipe())));
  return readdirSync(root).map((d) => join(root, d)).filter((d) => !current.has(d));
}
