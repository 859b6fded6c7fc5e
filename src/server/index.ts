// The server as the CLI sees it: the one file of src/server that src/cli may import (src/layers.json), for
// `oriel serve`. It loads fastify, SQLite and the rest, so the CLI imports it only in `serve` (await import).
export { createServer, type OrielServer } from './app.ts';
export { DEMO_VM, startDemo } from './demo.ts';
export { isLoopback } from './transport/tls.ts';
