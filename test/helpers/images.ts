// Builds (once, cached by recipe in ~/.cache/oriel or ORIEL_CACHE_DIR) the images tests boot.
import { defaultConfig } from '../../src/config.ts';
import { buildTinyImage } from '../../src/vm/images/tiny.ts';
import type { ImageManifest } from '../../src/vm/images/types.ts';

let tiny: Promise<ImageManifest> | undefined;
export function ensureTinyImage(): Promise<ImageManifest> {
  tiny ??= buildTinyImage({ cacheDir: defaultConfig().cacheDir });
  return tiny;
}
