// Whether the screenshot's own bundle (dist/node/bundle/screenshot.cjs, src/cli/screenshot.ts) was built from its
// sources as they are now. scripts/build-node.js writes its stamp (scripts/node-build-stamp.js: SCREENSHOT_STAMP_FILE,
// JSON { names: the files it was built from, files: "path size mtime" of each, one a line, taken when the build
// started }); the bundle checks it itself before doing anything, with the node:fs it loads anyway: a few dozen stat
// calls, no module of its own to load. Anything else than every file as recorded (an edit, a touch, no stamp) sends
// the command the full way, which compares the contents and runs the sources when they changed: never a stale run.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** scripts/node-build-stamp.js SCREENSHOT_STAMP_FILE, relative to the checkout. */
export const SCREENSHOT_STAMP = join('dist', 'node', '.oriel-screenshot-stamp');

/** The line of one file in a stamp (scripts/node-build-stamp.js `listed`). */
function listed(root: string, rel: string): string {
  const s = statSync(join(root, rel), { throwIfNoEntry: false });
  return s ? `${rel} ${s.size} ${s.mtimeMs}` : `${rel} -`;
}

export function bundleIsCurrent(root: string, stampFile = SCREENSHOT_STAMP): boolean {
  let stamp: { names?: unknown; files?: unknown };
  try {
    stamp = JSON.parse(readFileSync(join(root, stampFile), 'utf8')) as typeof stamp;
  } catch {
    return false;
  }
  const { names, files } = stamp;
  if (!Array.isArray(names) || typeof files !== 'string') return false;
  return names.map((n) => listed(root, String(n))).join('\n') === files;
}
