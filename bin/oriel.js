#!/usr/bin/env node
// The `oriel` command. It runs the compiled build (dist/node, made by scripts/build-node.js in the set-up step
// scripts/bootstrap.sh) when that was built from the sources as they are now (same stamp), otherwise the
// TypeScript sources through tsx: an edited source is never run stale. ORIEL_FROM_SOURCES=1 forces the sources.
import { dirname } from 'node:path';
import { builtStamp, sourceStamp } from '../scripts/node-build-stamp.js';

const root = dirname(import.meta.dirname);
const built = process.env.ORIEL_FROM_SOURCES === '1' ? undefined : builtStamp(root);
if (built !== undefined && built === sourceStamp(root)) {
  await import('../dist/node/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
