#!/usr/bin/env node
// The `oriel` command. It runs the compiled build (dist/node/bundle/oriel.js, made by scripts/build-node.js in the
// set-up step scripts/bootstrap.sh) when that was built from the sources as they are now (its stamp matches),
// otherwise the TypeScript sources through tsx: an edited source is never run stale. ORIEL_FROM_SOURCES=1 forces
// the sources.
import { dirname } from 'node:path';
import { buildIsCurrent } from '../scripts/node-build-stamp.js';

if (process.env.ORIEL_FROM_SOURCES !== '1' && buildIsCurrent(dirname(import.meta.dirname))) {
  await import('../dist/node/bundle/oriel.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
