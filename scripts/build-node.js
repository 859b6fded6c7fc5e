#!/usr/bin/env node
// Builds the compiled `oriel` command into dist/node; scripts/bootstrap.sh runs it, and it does nothing when dist/node
// was built from the sources as they are now. Two parts:
//   - src/ (except the web UI) → one JavaScript file per module with tsc (tsconfig.dist.json), plus the files the
//     code reads next to itself (guest image scripts): what `oriel serve` loads (the server, the checkpoint worker);
//   - the command line itself (src/cli/main.ts and what it imports: the SPICE client …) bundled by rolldown into
//     dist/node/bundle/oriel.js, one file to load instead of a hundred, which is what bin/oriel.js runs. Its imports
//     of src/server stay imports of the tsc output, so the server is loaded only by `serve`, from one copy;
//   - the fast path of `oriel console screenshot` (src/cli/screenshot.ts: the SPICE client and nothing else) bundled
//     on its own into dist/node/bundle/screenshot.cjs, with a stamp of the sources it was made from
//     (SCREENSHOT_STAMP_FILE) that bin/oriel.js checks with a few dozen stat calls.
// Usage: node scripts/build-node.js [--force]
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import {
  BUNDLE_ENTRY, SCREENSHOT_ENTRY, builtStamp, sourceFiles, sourceStamp, writeBundleStamp, writeStamp,
} from './node-build-stamp.js';

const root = dirname(import.meta.dirname);
const out = join(root, 'dist', 'node');
// Taken before compiling: a source edited during the build leaves a stamp that does not match, never a stale one.
const stamp = sourceStamp(root);
if (!process.argv.includes('--force') && builtStamp(root)?.hash === stamp.hash) {
  // The same contents: record the files' new times (bin/oriel.js's fast checks).
  writeStamp(root, stamp);
  writeBundleStamp(root, stamp);
  process.exit(0);
}

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

// The bundle: dependencies stay imports (node_modules), except fflate, which becomes node:zlib's native inflate
// (src/spice-node/inflate.ts: fflate builds its tables when loaded, milliseconds of every start).
const { build } = await import('rolldown');
const src = join(root, 'src');
const external = (id) => !id.startsWith('.') && !id.startsWith(sep) && id !== 'fflate' && !id.startsWith('\0');
const resolve = { alias: { fflate: join(src, 'spice-node', 'inflate.ts') } };
await build({
  input: join(src, 'cli', 'main.ts'),
  platform: 'node',
  logLevel: 'warn',
  external,
  resolve,
  plugins: [
    {
      name: 'server-from-tsc-output',
      resolveId(source, importer) {
        if (!importer || !source.startsWith('.')) return null;
        const rel = relative(src, join(dirname(importer), source));
        if (!rel.startsWith(`server${sep}`)) return null;
        return { id: `../${rel.split(sep).join('/').replace(/\.ts$/, '.js')}`, external: true };
      },
    },
  ],
  output: { dir: join(out, dirname(BUNDLE_ENTRY)), entryFileNames: 'oriel.js', format: 'esm' },
});
// The screenshot's own bundle; its stamp lists the files it was made from, as they were when the build started.
const inputs = [];
await build({
  input: join(src, 'cli', 'screenshot.ts'),
  platform: 'node',
  logLevel: 'warn',
  external,
  resolve,
  plugins: [
    {
      // Every module read, kept in the bundle or not (tree-shaking may drop one that a later edit makes count).
      name: 'list-inputs',
      buildEnd() {
        for (const id of this.getModuleIds()) if (id.startsWith(src + sep)) inputs.push(relative(root, id));
      },
    },
  ],
  // CommonJS: bin/oriel.js runs it as a script with a V8 code cache (no compiling at each start).
  output: {
    dir: join(out, dirname(SCREENSHOT_ENTRY)), entryFileNames: 'screenshot.cjs', chunkFileNames: '[name]-[hash].cjs',
    format: 'cjs',
  },
});
writeStamp(root, stamp);
writeBundleStamp(root, stamp, inputs);
