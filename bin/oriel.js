#!/usr/bin/env node
// The `oriel` command. It runs the compiled build (dist/node/bundle/oriel.js, made by scripts/build-node.js in the
// set-up step scripts/bootstrap.sh) when that was built from the sources as they are now (its stamp matches),
// otherwise the TypeScript sources through tsx: an edited source is never run stale. ORIEL_FROM_SOURCES=1 forces
// the sources. `console screenshot` first goes to its own small bundle (dist/node/bundle/screenshot.js, the SPICE
// client only: src/cli/screenshot.ts), which takes a spice:// or spice+unix:// target when it is current itself and
// otherwise declines: a screenshot is timed from process start, and loading code is most of it.
import { dirname } from 'node:path';

const root = dirname(import.meta.dirname);
const fromSources = process.env.ORIEL_FROM_SOURCES === '1';
const [command, sub] = process.argv.slice(2);
const done = !fromSources && command === 'console' && sub === 'screenshot' &&
  (await import('../dist/node/bundle/screenshot.js').then(
    (m) => m.runScreenshot(root, process.argv.slice(4)),
    () => false, // not built
  ));
if (!done) {
  const { buildIsCurrent } = await import('../scripts/node-build-stamp.js');
  if (!fromSources && buildIsCurrent(root)) {
    await import('../dist/node/bundle/oriel.js');
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    await import('../src/cli/main.ts');
  }
}
