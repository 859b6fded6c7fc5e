// The stamp of the compiled `oriel` (dist/node, built by scripts/build-node.js): a hash of everything the build
// reads — the sources under src/ (except the web UI, which Vite builds into dist/web) and the two tsconfig files.
// bin/oriel.js recomputes it at every start and runs the compiled build only when it matches, so an edited source
// is never run stale; the hash costs a few milliseconds.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the build writes the stamp of the sources it compiled. */
export const STAMP_FILE = join('dist', 'node', '.oriel-build-stamp');
/** Folders of src/ that are not part of the compiled command. */
const SKIP = new Set([join('src', 'web')]);

/** Files under `dir` (relative to `root`), sorted, SKIP folders left out. */
export function sourceFiles(root, dir = 'src') {
  const out = [];
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP.has(rel)) out.push(...sourceFiles(root, rel));
    } else if (e.isFile()) out.push(rel);
  }
  return out.sort();
}

/** sha256 over the path and content of every input of the build. */
export function sourceStamp(root) {
  const h = createHash('sha256');
  for (const rel of [...sourceFiles(root), 'tsconfig.base.json', 'tsconfig.dist.json']) {
    h.update(`${rel}\0`);
    try {
      h.update(readFileSync(join(root, rel)));
    } catch {
      h.update('\0missing\0');
    }
    h.update('\0');
  }
  return h.digest('hex');
}

/** The stamp the last build wrote, or undefined. */
export function builtStamp(root) {
  try {
    return readFileSync(join(root, STAMP_FILE), 'utf8').trim();
  } catch {
    return undefined;
  }
}
