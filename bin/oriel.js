#!/usr/bin/env node
// The `oriel` command. It runs the compiled build (dist/node/bundle/oriel.js, made by scripts/build-node.js in the
// set-up step scripts/bootstrap.sh) when that was built from the sources as they are now (its stamp matches),
// otherwise the TypeScript sources through tsx: an edited source is never run stale. ORIEL_FROM_SOURCES=1 forces
// the sources. `console screenshot` first goes to its own small bundle (dist/node/bundle/screenshot.cjs, the SPICE
// client only: src/cli/screenshot.ts), which takes a spice:// or spice+unix:// target when it is current itself and
// otherwise declines: a screenshot is timed from process start, and loading code is most of it. That bundle runs as
// a script with a V8 code cache beside it (written after its first run, named after the bundle's size and time, so
// a rebuilt bundle never meets the cache of another; V8 refuses one made by another Node or other flags).
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

const root = dirname(import.meta.dirname);
const fromSources = process.env.ORIEL_FROM_SOURCES === '1';
const [command, sub] = process.argv.slice(2);

/** Runs the screenshot bundle on the arguments; false when it declines or is not built. */
async function screenshot() {
  const file = join(root, 'dist', 'node', 'bundle', 'screenshot.cjs');
  let script;
  let cache;
  let exports;
  try {
    const s = statSync(file);
    cache = `${file}.${s.size}-${Math.round(s.mtimeMs)}.cache`;
    let cachedData;
    try {
      cachedData = readFileSync(cache);
    } catch {
      // none yet
    }
    const source = readFileSync(file, 'utf8');
    script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
      filename: file,
      cachedData,
    });
    const module = { exports: {} };
    script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file));
    exports = module.exports;
    if (cachedData && !script.cachedDataRejected) cache = undefined;
  } catch {
    return false; // not built
  }
  if (typeof exports.runScreenshot !== 'function') return false; // another bundle's shape: the full way
  const done = await exports.runScreenshot(root, process.argv.slice(4));
  if (done && cache) {
    try {
      // With the functions the screenshot compiled; written whole, then renamed: a reader never sees half of it.
      writeFileSync(`${cache}.${process.pid}`, script.createCachedData());
      renameSync(`${cache}.${process.pid}`, cache);
    } catch {
      // a read-only checkout or a full disk: compiled again next time
      rmSync(`${cache}.${process.pid}`, { force: true });
    }
  }
  return done;
}

if (fromSources || command !== 'console' || sub !== 'screenshot' || !(await screenshot())) {
  const { buildIsCurrent } = await import('../scripts/node-build-stamp.js');
  if (!fromSources && buildIsCurrent(root)) {
    await import('../dist/node/bundle/oriel.js');
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    await import('../src/cli/main.ts');
  }
}
