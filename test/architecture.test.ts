// The layers of the code point one way. Each folder of src/ may import only the folders listed for it:
//   spice: nothing (isomorphic core: no Node, no DOM)   host: nothing   vm: host, store   checkpoint: host, vm, store
//   server: host, vm, checkpoint, spice, spice-node, store    spice-node: spice
//   cli: spice, spice-node (its console client); `oriel serve` starts the server
// A break of these rules fails here, naming the file and the import; eslint.config.js reads the same map
// (src/layers.json) into lint rules (import-x/no-restricted-paths), so `npm run lint` reports it in the editor too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const SRC = resolve(import.meta.dirname, '../src');
// The map (src/layers.json) is the linter's too. `cli` may use spice: `oriel console` is a SPICE client of its own.
const MAP = JSON.parse(readFileSync(join(SRC, 'layers.json'), 'utf8')) as {
  layers: Record<string, string[]>;
  shared: string[];
  exceptions: Record<string, string[]>;
};
const allowed = MAP.layers;
// Files at the top of src/ (config, errors) are shared vocabulary every layer but spice may use.
const SHARED = new Set(MAP.shared);
const exceptions = MAP.exceptions;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : /\.tsx?$/.test(n) ? [p] : [];
  });
}

test('imports respect the layers', () => {
  const problems: string[] = [];
  for (const f of files(SRC)) {
    const rel = relative(SRC, f);
    const layer = rel.includes('/') ? rel.split('/')[0]! : null;
    if (!layer) continue;
    const src = readFileSync(f, 'utf8');
    for (const m of src.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      const spec = m[1] ?? m[2]!;
      if (!spec.startsWith('.')) continue;
      const target = relative(SRC, resolve(dirname(f), spec));
      const tLayer = target.includes('/') ? target.split('/')[0]! : null;
      if (tLayer === layer) continue;
      if (tLayer === null && SHARED.has(target) && layer !== 'spice') continue;
      if (tLayer && (allowed[layer] ?? []).includes(tLayer)) continue;
      if (tLayer && (exceptions[rel] ?? []).includes(tLayer)) continue;
      problems.push(
        `${rel} imports ${spec} (${tLayer ?? target}); ${layer} may import only ${JSON.stringify(allowed[layer])}`,
      );
    }
  }
  assert.deepEqual(problems, []);
});
