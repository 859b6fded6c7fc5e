// The SPICE core runs unchanged in the browser and in Node: src/spice/ may import nothing from
// Node or the DOM and use none of their globals. This scans the sources and then imports the core
// in plain Node without any shim.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const CORE = join(import.meta.dirname, '../../src/spice');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : n.endsWith('.ts') ? [p] : [];
  });
}

/** Drops comments and string contents so that prose mentioning e.g. "Buffer" does not count. */
function code(src: string): string {
  return src
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '')
    .replace(/`(?:\\.|[^`\\])*`/g, '``')
    .replace(/'(?:\\.|[^'\\])*'/g, "''");
}

const FORBIDDEN_GLOBALS = [
  'Buffer', 'process', 'require', 'window', 'document', 'navigator', 'globalThis', 'self', 'TextEncoder',
  'TextDecoder', 'setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask', 'WebSocket', 'crypto', 'fetch',
  'console', '__dirname', '__filename',
];

/**
 * The one sanctioned exception: src/spice/timers.ts reaches for the host's timers through globalThis (setTimeout
 * and clearTimeout exist in browsers and Node but in no ES lib); everything else in the core uses its startTimer().
 */
const ALLOWED_GLOBALS: Record<string, string[]> = { 'timers.ts': ['globalThis', 'setTimeout'] };

/** Packages the core may import: pure ECMAScript, no Node or DOM use (fflate: zlib inflate for ZLIB_GLZ_RGB). */
const ALLOWED_PACKAGES = ['fflate'];

test('src/spice imports only relative modules inside src/spice, and pure-ECMAScript packages', () => {
  const problems: string[] = [];
  for (const f of files(CORE)) {
    const src = readFileSync(f, 'utf8');
    for (const m of src.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      const spec = m[1] ?? m[2]!;
      const target = join(f, '..', spec);
      if (ALLOWED_PACKAGES.includes(spec)) continue;
      if (!spec.startsWith('.') || relative(CORE, target).startsWith('..'))
        problems.push(`${relative(CORE, f)}: ${spec}`);
    }
  }
  assert.deepEqual(problems, []);
});

test('src/spice uses no Node or DOM globals', () => {
  const problems: string[] = [];
  for (const f of files(CORE)) {
    const src = code(readFileSync(f, 'utf8'));
    for (const g of FORBIDDEN_GLOBALS) {
      if (ALLOWED_GLOBALS[relative(CORE, f)]?.includes(g)) continue;
      // a bare identifier, not a property (`x.process`) or an object key
      if (new RegExp(`(?<![.\\w$])${g}(?![\\w$])(?!\\s*:)`).test(src)) problems.push(`${relative(CORE, f)}: ${g}`);
    }
  }
  assert.deepEqual(problems, []);
});

test('the core imports in plain Node with no shim', async () => {
  const core = await import('../../src/spice/index.ts');
  assert.equal(typeof core.SpiceSession.connect, 'function');
  assert.equal(core.nameOf(core.ChannelType, 2), 'DISPLAY');
});
