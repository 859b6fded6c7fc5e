// The layers of the code point one way. Each folder of src/ may import only the folders listed for it:
//   spice: nothing (isomorphic core: no Node, no DOM)   api: nothing (the API contract: zod only)   host: nothing
//   vm: host, db, api         checkpoint: host, vm, db              spice-node: spice
//   network: nothing (the software switch)
//   server: api, host, vm, checkpoint, network, spice, spice-node, db      web: api, spice, spice-web
//   spice-web: spice (the core's browser host)
//   cli: api, spice, spice-node (its console client), and of the server only its facade server/index.ts
//        (`oriel serve` starts the server)
// There are no exceptions: a file that needs more belongs in another layer, or the layer needs a facade.
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
};
const allowed = MAP.layers;
// Files at the top of src/ (config, errors) are shared vocabulary every layer but spice and api may use.
const SHARED = new Set(MAP.shared);
const SELF_CONTAINED = new Set(['spice', 'api']);

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
      if (tLayer === null && SHARED.has(target) && !SELF_CONTAINED.has(layer)) continue;
      // A folder, or one file of it (a facade such as server/index.ts).
      if (tLayer && (allowed[layer] ?? []).some((a) => a === tLayer || a === target)) continue;
      problems.push(
        `${rel} imports ${spec} (${tLayer ?? target}); ${layer} may import only ${JSON.stringify(allowed[layer])}`,
      );
    }
  }
  assert.deepEqual(problems, []);
});

test('the map has no exceptions, and every facade it names exists', () => {
  assert.deepEqual(Object.keys(MAP).sort(), ['//', 'layers', 'shared']);
  for (const [layer, targets] of Object.entries(allowed)) {
    for (const t of targets) {
      const file = t.includes('/');
      assert.ok(file ? statSync(join(SRC, t)).isFile() : t in allowed, `${layer} may import '${t}': no such layer or file`);
    }
  }
});

test('the API contract imports nothing but zod and its own files', () => {
  const problems: string[] = [];
  for (const f of files(join(SRC, 'api'))) {
    for (const m of readFileSync(f, 'utf8').matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/g)) {
      const spec = m[1]!;
      if (spec === 'zod' || (spec.startsWith('./') && !spec.slice(2).includes('/'))) continue;
      problems.push(`${relative(SRC, f)} imports ${spec}`);
    }
  }
  assert.deepEqual(problems, []);
});

test('what the web UI and the CLI load at run time from src/api is free of zod', () => {
  // client.ts, transport.ts and states.ts: their imports are `import type`, or of each other.
  const runtime = new Set(['client.ts', 'transport.ts', 'states.ts']);
  const problems: string[] = [];
  for (const name of runtime) {
    const src = readFileSync(join(SRC, 'api', name), 'utf8');
    for (const m of src.matchAll(/^(import|export)(?!\s+type\b)[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
      if (!runtime.has(m[2]!.replace(/^\.\//, ''))) problems.push(`api/${name} loads ${m[2]}`);
    }
  }
  assert.deepEqual(problems, []);
});
