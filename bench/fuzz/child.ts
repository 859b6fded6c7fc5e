// The server under fuzz, in its own process (so that a crash shows as an exit code or signal, not as the fuzzer
// dying): a fresh data directory, a free port, errors logged as JSON lines on stdout. Prints `READY <port>` once it
// listens. Usage (by bench/fuzz-server.ts): node --import tsx bench/fuzz/child.ts DATA_DIR ADMIN_PASSWORD
import { defaultConfig } from '../../src/config.ts';
import { createServer } from '../../src/server/app.ts';

const [dataDir, adminPassword] = process.argv.slice(2);
if (!dataDir || !adminPassword) throw new Error('usage: child.ts DATA_DIR ADMIN_PASSWORD');
const server = await createServer({
  ...defaultConfig(),
  dataDir,
  host: '127.0.0.1',
  port: 0,
  accel: 'tcg',
  adminPassword,
  logLevel: 'error',
  stopTimeoutSec: 5,
});
await server.app.listen({ host: '127.0.0.1', port: 0 });
const a = server.app.server.address();
process.stdout.write(`READY ${typeof a === 'object' && a ? a.port : 0}\n`);
process.on('SIGTERM', () => {
  void (async () => {
    for (const vm of server.ctx.vms.list()) {
      if (!['stopped', 'crashed'].includes(vm.state)) await server.ctx.vms.forceStop(vm.id).catch(() => undefined);
    }
    await server.close();
    process.exit(0);
  })();
});
