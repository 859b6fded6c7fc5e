// oriel serve: runs the server in this process. With --demo it also starts a demo VM: a desktop (its image built first
// when missing: minutes, the progress shown; the tiny image if it cannot be built here) on a --nat network 'demo'.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { configProblems, defaultConfig, splitList, type Accel, type OrielConfig } from '../../config.ts';
// The server (fastify, SQLite …) is loaded only by `serve` itself, through its facade: every other command starts
// without it.
import type { OrielServer } from '../../server/index.ts';
import { CliError } from '../api.ts';
import { ProgressBar } from '../output.ts';

export function serveCommand(program: Command): void {
  program
    .command('serve')
    .description('run the Oriel server (state in the data directory; VMs keep running when it stops)')
    .option('--host <addr>', 'address to listen on (ORIEL_HOST; default 127.0.0.1)')
    .option('--port <n>', 'port (ORIEL_PORT; default 8470)')
    .option('--data-dir <dir>', 'data directory (ORIEL_DATA_DIR; default ~/.local/share/oriel)')
    .option('--cache-dir <dir>', 'image cache (ORIEL_CACHE_DIR; default ~/.cache/oriel)')
    .option('--accel <auto|kvm|tcg>', 'acceleration for new VMs (ORIEL_ACCEL; default auto)')
    .option('--images-dir <dir>', 'a folder whose disk images, kernels and initrds admins may name by path; repeatable (ORIEL_IMAGES_DIRS, separated by ":")',
      (d: string, prev: string[] | undefined) => [...(prev ?? []), d])
    .option('--tls-cert <file>', 'PEM certificate (chain) to serve https and wss with (ORIEL_TLS_CERT)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert (ORIEL_TLS_KEY)')
    .option('--no-tls', 'plain http even beyond loopback, e.g. behind a reverse proxy that does TLS (ORIEL_TLS=off)')
    .option('--trust-proxy <addrs>', 'reverse proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-* headers are believed (ORIEL_TRUST_PROXY)')
    .option('--checkpoint-store <url>', 'upload every checkpoint to s3://BUCKET/PREFIX[?endpoint=URL] (ORIEL_CHECKPOINT_STORE; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)')
    .option('--demo [image]', "start a VM named 'demo' owned by admin on a --nat network 'demo' (made if missing), from IMAGE, by default the desktop (built if missing)")
    .action(async (o) => {
      const config: OrielConfig = defaultConfig();
      if (o.host) config.host = o.host;
      if (o.port) config.port = Number(o.port);
      if (o.dataDir) config.dataDir = resolve(o.dataDir);
      if (o.cacheDir) config.cacheDir = resolve(o.cacheDir);
      if (o.imagesDir) config.imagesDirs = (o.imagesDir as string[]).map((d) => resolve(d));
      if (o.accel) config.accel = o.accel as Accel;
      if (o.tlsCert) config.tlsCert = resolve(o.tlsCert);
      if (o.tlsKey) config.tlsKey = resolve(o.tlsKey);
      if (o.tls === false) config.tls = 'off';
      if (o.trustProxy) config.trustProxy = splitList(o.trustProxy);
      if (o.checkpointStore) config.checkpointStore = o.checkpointStore as string;
      const problems = configProblems(config);
      if (problems.length) throw new CliError(problems.join('\n'));
      const { createServer, isLoopback } = await import('../../server/index.ts');
      let server: OrielServer;
      try {
        server = await createServer(config);
      } catch (e) {
        throw new CliError((e as Error).message);
      }
      // The last resort: an error no handler caught is logged and the server keeps serving its other clients
      // (every request path has its own handling; this is for the bug nobody has found yet).
      process.on('uncaughtException', (err) => server.app.log.error({ err }, 'uncaught exception (the server goes on)'));
      process.on('unhandledRejection', (err) => server.app.log.error({ err }, 'unhandled rejection (the server goes on)'));
      try {
        await server.app.listen({ host: config.host, port: config.port });
      } catch (e) {
        await server.close();
        throw new CliError(`cannot listen on ${config.host}:${config.port}: ${(e as Error).message}`);
      }
      const addr = server.app.server.address();
      const port = typeof addr === 'object' && addr ? addr.port : config.port;
      const url = `${server.tls ? 'https' : 'http'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
      const out = process.stdout;
      out.write(`\nOriel is running at ${url}\n`);
      if (server.tls) {
        out.write(`  certificate:    ${server.tls.certFile}${server.tls.selfSigned ? ' (self-signed, made by Oriel)' : ''}\n`);
        out.write(`  SHA-256 fingerprint: ${server.tls.fingerprint}\n`);
        if (server.tls.selfSigned)
          out.write('  (browsers warn about a self-signed certificate: check that they show this fingerprint)\n');
      } else if (!isLoopback(config.host))
        out.write('  plain http (--no-tls): passwords and tokens cross the network in clear unless a proxy does TLS\n');
      out.write(`  data directory: ${config.dataDir}\n`);
      if (config.checkpointStore) out.write(`  checkpoints uploaded to ${config.checkpointStore.replace(/\?.*$/, '')}\n`);
      if (server.firstAdmin) {
        out.write(`  admin account:  ${server.firstAdmin.name}\n`);
        if (server.firstAdmin.generated)
          out.write(
            `  admin password: ${server.firstAdmin.password}   (shown only now; ORIEL_ADMIN_PASSWORD sets it)\n`,
          );
        else out.write('  admin password: from ORIEL_ADMIN_PASSWORD\n');
      }
      const pin = server.tls?.selfSigned ? ` --fingerprint ${server.tls.fingerprint}` : '';
      out.write(`  sign in from a shell: npx oriel login --server ${url}${pin}\n\n`);
      const stop = async () => {
        out.write('stopping the server (VMs keep running; the next `oriel serve` re-attaches them)\n');
        await server.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      if (o.demo)
        void demo(server, typeof o.demo === 'string' ? o.demo : undefined).catch((e) =>
          server.app.log.error({ err: e }, `demo VM: ${(e as Error).message}`),
        );
    });
}

/** Starts the demo VM (server/demo.ts), its image build's progress on stderr. */
async function demo(server: OrielServer, imageName?: string): Promise<void> {
  const { startDemo } = await import('../../server/index.ts');
  const bar = new ProgressBar();
  let r;
  try {
    r = await startDemo(server, imageName, (image, p) => bar.update(p.done, p.total, `image ${image}: ${p.stage}`));
  } finally {
    bar.end();
  }
  if (r) {
    process.stdout.write(`demo VM '${r.vm}' (${r.image}, network '${r.network}') is ${r.state}: `
      + `try \`npx oriel vm exec ${r.vm} -- uname -a\`\n`);
  }
}
