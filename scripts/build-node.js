#!/usr/bin/env node
// Builds the compiled `oriel` command: src/ (except the web UI) → JavaScript in dist/node with tsc
// (tsconfig.dist.json), plus the non-TypeScript files the code reads next to itself (guest image scripts).
// scripts/bootstrap.sh runs it; it does nothing when dist/node was built from the sources as they are now.
// Usage: node scripts/build-node.js [--force]
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { STAMP_FILE, builtStamp, sourceFiles, sourceStamp } from './node-build-stamp.js';

const root = dirname(import.meta.dirname);
const out = join(root, 'dist', 'node');
// Taken before compiling: a source edited during the build leaves a stamp that does not match, never a stale one.
const stamp = sourceStamp(root);
if (!process.argv.includes('--force') && builtStamp(root) === stamp) process.exit(0);

console.error('build-node: compiling the oriel command into dist/node');
rmSync(out, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.dist.json')], { stdio: 'inherit' });
if (r.status !== 0) {
  console.error('build-node: tsc failed; `oriel` keeps running the sources through tsx');
  process.exit(1);
}
for (const rel of sourceFiles(root)) {
  if (rel.endsWith('.ts') || rel.endsWith('tsconfig.json')) continue;
  const to = join(out, relative('src', rel));
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(join(root, rel), to);
}
writeFileSync(join(root, STAMP_FILE), `${stamp}\n`);
