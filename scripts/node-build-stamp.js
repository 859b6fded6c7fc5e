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
/** The screenshot's fast path (src/cli/screenshot.ts), relative to dist/node, and the stamp of its own sources (its
 * format is read by src/cli/bundle-stamp.ts, which the bundle checks itself: keep the two alike). */
export const SCREENSHOT_ENTRY = join('bundle', 'screenshot.cjs');
export const SCREENSHOT_STAMP_FILE = join('dist', 'node', '.oriel-screenshot-stamp');
/** Folders of src/ that are not part of the compiled command. */
const SKIP = new Set([join('src', 'web')]);
// The build's own recipe too: a change to it alone (an alias, an external) must make a new build.
const CONFIGS = ['tsconfig.base.json', 'tsconfig.dist.json', 'scripts/build-node.js', 'scripts/node-build-stamp.js'];

/** Files under `dir` (relative to `root`), sorted, SKIP folders and notes (*.md: nothing compiles or reads them)
 * left out: a README edited beside the code does not send `oriel` back to the sources (~0.4 s more per command). */
export function sourceFiles(root, dir = 'src') {
  const out = [];
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP.has(rel)) out.push(...sourceFiles(root, rel));
    } else if (e.isFile() && !e.name.endsWith('.md')) out.push(rel);
  }
  return out.sort();
}

/** "path size mtime" of one input (missing: "path -"). */
function listed(root, rel) {
  const s = statSync(join(root, rel), { throwIfNoEntry: false });
  return s ? `${rel} ${s.size} ${s.mtimeMs}` : `${rel} -`;
}

/** "path size mtime" of every input, one string to compare. */
function listing(root, files) {
  return files.map((rel) => listed(root, rel)).join('\n');
}

/** The stamp of the sources as they are now: { hash, files } (files: the listing; lines: each file's line of it). */
export function sourceStamp(root) {
  const files = [...sourceFiles(root), ...CONFIGS];
  // Listed before reading: a file changed in between leaves a listing that does not match (contents hashed again).
  const lines = new Map(files.map((f) => [f, listed(root, f)]));
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
  return { hash: h.digest('hex'), files: [...lines.values()].join('\n'), lines };
}

export function writeStamp(root, stamp) {
  writeFileSync(join(root, STAMP_FILE), JSON.stringify({ hash: stamp.hash, files: stamp.files }));
}

/**
 * Writes the screenshot bundle's stamp: its `inputs` (default: those of the stamp already written, for a build that
 * found nothing changed) and the configs, each with its line of `stamp`, taken before compiling: a file edited during
 * the build leaves a stamp that does not match.
 */
export function writeBundleStamp(root, stamp, inputs) {
  let names = inputs && [...inputs, ...CONFIGS];
  try {
    names ??= JSON.parse(readFileSync(join(root, SCREENSHOT_STAMP_FILE), 'utf8')).names;
  } catch {
    // none yet
  }
  if (!Array.isArray(names)) return;
  const files = names.map((rel) => stamp.lines.get(rel) ?? `${rel} -`).join('\n');
  writeFileSync(join(root, SCREENSHOT_STAMP_FILE), JSON.stringify({ names, files }));
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
