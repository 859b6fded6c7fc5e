// The linter: `npm run lint` (and `npm test`, after the type check). Not type-aware, to stay fast.
// The layer rules below are the map of test/architecture.test.ts, checked on resolved paths.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX, createNodeResolver } from 'eslint-plugin-import-x';

/** Each folder of src/ and the folders it may import besides itself (src/layers.json, shared with the layer test). */
const MAP = JSON.parse(readFileSync(join(import.meta.dirname, 'src/layers.json'), 'utf8'));
const LAYERS = MAP.layers;
const SHARED = MAP.shared.map((f) => `./${f}`);
/** Layers that may not use the shared top-level files either: they run anywhere (spice) or are the contract (api). */
const SELF_CONTAINED = ['spice', 'api'];

/** import-x/no-restricted-paths zones for every layer: its own folder, the folders (or facade files) it may import,
 * and the shared files. No exceptions. */
function layerZones() {
  return Object.entries(LAYERS).map(([layer, allowed]) => ({
    target: `./src/${layer}`,
    from: './src',
    except: [`./${layer}`, ...allowed.map((l) => `./${l}`), ...(SELF_CONTAINED.includes(layer) ? [] : SHARED)],
    message: `src/${layer} may import only ${JSON.stringify(allowed)} (test/architecture.test.ts).`,
  }));
}

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'test-artifacts/', '.oriel-data/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.{ts,js}'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.json'] })],
    },
    languageOptions: { ecmaVersion: 2023, sourceType: 'module' },
    rules: {
      // A leading _ marks a name left unused on purpose (a key dropped by a rest pattern, a required parameter).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      'import-x/no-cycle': 'error',
      'max-lines': ['error', { max: 500, skipBlankLines: true, skipComments: true }],
      'max-len': [
        'error',
        { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true },
      ],
      'import-x/no-restricted-paths': ['error', { zones: layerZones() }],
    },
  },
  {
    // The isomorphic core: its own modules and pure-ECMAScript packages only (fflate: zlib inflate).
    files: ['src/spice/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!\\.\\.?/|fflate$)',
              message: 'src/spice runs in browsers and Node: it imports only its own modules and fflate.',
            },
          ],
        },
      ],
    },
  },
  {
    // The API contract, shared by the server, the web UI and the CLI: zod and its own files only.
    files: ['src/api/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^(?!\\./|zod$)', message: 'src/api is the API contract: it imports only zod and its own files.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/web/**/*.ts', 'src/spice-web/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^node:', message: 'src/web and src/spice-web run in the browser: no Node modules.' }] },
      ],
      'import-x/no-nodejs-modules': 'error',
    },
  },
  {
    // Tests read untyped JSON replies and drive the browser through page.evaluate, where the Node project has no DOM
    // types: there `any` is the honest type.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
