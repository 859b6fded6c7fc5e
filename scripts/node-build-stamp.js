// The stamp of the compiled `oriel` (dist/node, built by scripts/build-node.js): a hash of everything the build
// reads — the sources under src/ (except the web UI, which Vite builds into dist/web) and the two tsconfig files —
// and each file's size and modification time. bin/oriel.js checks it at every start and runs the compiled build only
// when it matches, so an edited source is never run stale: when every file still has the size and time recorded
// (a couple of milliseconds of stat calls) the build is current; otherwise the contents are hashed again (a file
// touched but not changed keeps the build current).
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the build writes the stamp of the sources it compiled. */
export const STAMP_FILE = join('dist', 'node', '.oriel-build-stamp');
/** The compiled command, relative to dist/node. */
export const BUNDLE_ENTRY = join('bundle', 'oriel.js');
/** Folders of src/ that are not part of the compiled command. */
const SKIP = new Set([join('src', 'web')]);
const CONFIGS = ['tsconfig.base.json', 'tsconfig.dist.json'];

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

/** "path size mtime" of every input (missing: "path -"), one string to compare. */
function listing(root, files) {
  return files
    .map((rel) => {
      try {
        const s = statSync(join(root, rel));
        return `${rel} ${s.size} ${s.mtimeMs}`;
      } catch {
        return `${rel} -`;
      }
    })
    .join('\n');
}

/** The stamp of the sources as they are now: { hash, files } (files: the listing). */
export function sourceStamp(root) {
  const files = [...sourceFiles(root), ...CONFIGS];
  const h = createHash('sha256');
  for (const rel of files) {
    h.update(`${rel}\0`);
    try {
      h.update(readFileSync(join(root, rel)));
    } catch {
      h.update('\0missing\0');
    }
    h.update('\0');
  }
  return { hash: h.digest('hex'), files: listing(root, files) };
}

export function writeStamp(root, stamp) {
  writeFileSync(join(root, STAMP_FILE), JSON.stringify(stamp));
}

/** The stamp the last build wrote, or undefined. */
export function builtStamp(root) {
  try {
    const s = JSON.parse(readFileSync(join(root, STAMP_FILE), 'utf8'));
    return typeof s.hash === 'string' && typeof s.files === 'string' ? s : undefined;
  } catch {
    return undefined;
  }
}

/** Whether dist/node was built from the sources as they are now. */
export function buildIsCurrent(root) {
  const built = builtStamp(root);
  if (!built) return false;
  if (listing(root, [...sourceFiles(root), ...CONFIGS]) === built.files) return true;
  return sourceStamp(root).hash === built.hash;
}
