// bin/oriel.js picks what it runs: the compiled build (dist/node) only while its stamp matches the sources, the
// TypeScript sources through tsx otherwise; `console screenshot` first offers itself to its own bundle. Checked on a
// small copy of the layout (the real launcher and stamp module, a src/cli/main.ts and a dist/node/bundle/oriel.js
// that say which one ran), so nothing of the checkout changes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const REPO = join(import.meta.dirname, '../..');

describe('bin/oriel.js: compiled build or sources', () => {
  let root: string;
  const put = (rel: string, text: string) => {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  };
  /** What the launcher ran: 'compiled' or 'sources' (each entry point prints its name and its arguments). */
  const run = (env: NodeJS.ProcessEnv = {}, args = ['a1']): string => {
    const r = spawnSync(process.execPath, [join(root, 'bin/oriel.js'), ...args], {
      encoding: 'utf8',
      env: { ...process.env, ORIEL_FROM_SOURCES: '', ...env },
    });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  /** Does what scripts/build-node.js does last: records the stamp of the sources as they are now. */
  const stampBuild = async () => {
    const m = await import(join(root, 'scripts/node-build-stamp.js'));
    mkdirSync(join(root, 'dist/node'), { recursive: true });
    m.writeStamp(root, m.sourceStamp(root));
  };
  const SOURCE_MAIN = "const from: string = 'sources';\nconsole.log(from, process.argv.slice(2).join(' '));\n";

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'olaunch-'));
    for (const f of ['bin/oriel.js', 'scripts/node-build-stamp.js', 'tsconfig.base.json', 'tsconfig.dist.json']) {
      mkdirSync(dirname(join(root, f)), { recursive: true });
      copyFileSync(join(REPO, f), join(root, f));
    }
    symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'));
    put('package.json', '{ "type": "module" }\n');
    // TypeScript syntax: only tsx can run it.
    put('src/cli/main.ts', SOURCE_MAIN);
    put('src/vm/tiny-init.sh', 'echo hi\n');
    put('dist/node/bundle/oriel.js', "console.log('compiled', process.argv.slice(2).join(' '));\n");
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('no stamp: the sources through tsx', () => {
    assert.equal(run(), 'sources a1');
  });

  test('a current stamp: the compiled build, with the arguments', async () => {
    await stampBuild();
    assert.equal(run(), 'compiled a1');
    assert.equal(run({ ORIEL_FROM_SOURCES: '1' }), 'sources a1', 'ORIEL_FROM_SOURCES=1 forces the sources');
  });

  test('an edited, added or removed source makes the build stale; only content counts', async () => {
    await stampBuild();
    put('src/cli/main.ts', SOURCE_MAIN.replace("'sources'", "'sources'.toString()"));
    assert.equal(run(), 'sources a1', 'edited .ts');
    put('src/cli/main.ts', SOURCE_MAIN); // the same bytes again (a newer time: the contents are hashed): current
    assert.equal(run(), 'compiled a1');
    put('src/cli/extra.ts', 'export {};\n');
    assert.equal(run(), 'sources a1', 'added file');
    unlinkSync(join(root, 'src/cli/extra.ts'));
    assert.equal(run(), 'compiled a1');
    put('src/vm/tiny-init.sh', 'echo changed\n');
    assert.equal(run(), 'sources a1', 'a non-TypeScript file the build copies');
    put('src/vm/tiny-init.sh', 'echo hi\n');
    put('tsconfig.dist.json', '{}\n');
    assert.equal(run(), 'sources a1', 'the build configuration');
    copyFileSync(join(REPO, 'tsconfig.dist.json'), join(root, 'tsconfig.dist.json'));
    assert.equal(run(), 'compiled a1');
  });

  test('console screenshot: its own bundle when it takes the command, else the usual choice', async () => {
    await stampBuild();
    const shot = (args: string[], env: NodeJS.ProcessEnv = {}) => run(env, ['console', 'screenshot', ...args]);
    assert.equal(shot(['x']), 'compiled console screenshot x', 'no screenshot bundle built');
    // The fast bundle decides itself (its stamp, the arguments); here: it takes `take`, declines the rest.
    put('dist/node/bundle/screenshot.cjs', 'exports.runScreenshot = async function (root, args) {\n' +
      "  if (args[0] !== 'take') return false;\n  console.log('fast', root === process.env.ROOT, args.join(' '));\n" +
      '  return true;\n};\n');
    assert.equal(shot(['take', 'b'], { ROOT: root }), 'fast true take b');
    assert.equal(shot(['decline']), 'compiled console screenshot decline');
    assert.equal(shot(['take'], { ORIEL_FROM_SOURCES: '1' }), 'sources console screenshot take');
    assert.equal(run({}, ['console', 'type', 'take']), 'compiled console type take', 'other commands');
    // It ran as a script with a code cache, written after the first run that took the command, used by the next.
    const caches = () => readdirSync(join(root, 'dist/node/bundle')).filter((f) => f.endsWith('.cache'));
    assert.equal(caches().length, 1);
    assert.equal(shot(['take', 'c'], { ROOT: root }), 'fast true take c');
    assert.equal(caches().length, 1);
    // A rebuilt bundle (other size and time) does not use the cache of the one before.
    put('dist/node/bundle/screenshot.cjs', "exports.runScreenshot = async () => (console.log('rebuilt'), true);\n");
    assert.equal(shot(['x']), 'rebuilt');
    assert.equal(caches().length, 2);
    for (const f of readdirSync(join(root, 'dist/node/bundle'))) if (f.startsWith('screenshot')) unlinkSync(join(root, 'dist/node/bundle', f));
  });

  test('the web UI and notes (*.md) are not part of the compiled command', async () => {
    await stampBuild();
    put('src/web/app.ts', 'export const x = 1;\n');
    put('src/cli/README.md', '# notes\n');
    assert.equal(run(), 'compiled a1');
  });
});
