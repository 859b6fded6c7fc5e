// Builds the web UI (src/web) into dist/web, which `oriel serve` serves (src/server/web.ts). `npx vite` runs a dev
// server that proxies /api (REST, events, console WebSockets) to a running `oriel serve` (ORIEL_URL, default :8470).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const api = process.env.ORIEL_URL ?? 'http://127.0.0.1:8470';

export default defineConfig({
  root: fileURLToPath(new URL('./src/web', import.meta.url)),
  base: '/',
  build: {
    outDir: fileURLToPath(new URL('./dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    rollupOptions: {
      output: {
        // The app's shared plumbing (Preact, signals, the API client, the UI state, small shared views) in one chunk,
        // so a page loads a few files rather than one per shared module; the SPICE core and each lazy view apart.
        manualChunks: (id: string) =>
          /node_modules\/(preact|@preact|htm)\/|\/src\/(api|web\/lib)\/|\/src\/web\/views\/confirm\.ts/.test(id)
            ? 'app'
            : undefined,
      },
    },
  },
  server: {
    proxy: { '/api': { target: api, ws: true, changeOrigin: false } },
  },
});
