// Builds Oriel's server: state in SQLite under the data directory, the VM manager, operations, and the REST API
// (fastify, request/response schemas in zod, the OpenAPI document generated from the same schemas).
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import cookie from '@fastify/cookie';
import swagger from '@fastify/swagger';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
} from 'fastify-type-provider-zod';
import { ZodError, type ZodType } from 'zod';
import type { OrielConfig } from '../config.ts';
import { OrielError } from '../errors.ts';
import { openDatabase } from '../db/database.ts';
import { VmManager } from '../vm/manager.ts';
import { registerAuth, SESSION_COOKIE } from './auth/plugin.ts';
import { generatePassword } from './auth/passwords.ts';
import { Users } from './auth/users.ts';
import type { ServerContext } from './context.ts';
import { Operations } from './operations.ts';
import { authRoutes } from './routes/auth.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { eventRoutes } from './routes/events.ts';
import { imageRoutes } from './routes/images.ts';
import { uploadRoutes } from './routes/uploads.ts';
import { operationRoutes } from './routes/operations.ts';
import { userRoutes } from './routes/users.ts';
import { vmRoutes } from './routes/vms.ts';
import { vmMediaRoutes } from './routes/vm-media.ts';
import { consoleRoutes } from './routes/console.ts';
import { checkpointRoutes } from './routes/checkpoints.ts';
import { CheckpointSchedules } from './checkpoint-jobs/schedules.ts';
import { CaptureRecovery } from './checkpoint-jobs/recovery.ts';
import { CheckpointService } from '../checkpoint/service.ts';
import { hugeAgainFromEnv } from '../checkpoint/huge-again.ts';
import { hugePagesDefaultFromEnv, reconcileHugePool } from '../vm/huge-pool.ts';
import { pauseModeFromEnv } from '../checkpoint/pause-mode.ts';
import { spiceUpgrade } from './console/proxy.ts';
import { registerUpgrades } from './console/upgrade.ts';
import { ConsoleTickets } from './console/tickets.ts';
import { ScreenPreviews } from './console/screen-preview.ts';
import { ConsoleLimits } from './console/limits.ts';
import { serialUpgrade } from './console/serial.ts';
import { registerWebUi } from './web.ts';
import { Quotas } from './quotas/quotas.ts';
import { quotaRoutes } from './routes/quotas.ts';
import { Networks } from './networks/networks.ts';
import { Forwards } from './networks/forwards.ts';
import { OpenClRemoting } from './opencl.ts';
import { networkRoutes } from './routes/networks.ts';
import { serverTls, type ServerTls } from './transport/tls.ts';
import { proxyTrust } from './transport/proxy-trust.ts';

export const VERSION = '0.1.0';
/** Time a client has to send a whole request (headers and body). */
export const REQUEST_TIMEOUT_MS = 30_000;

export interface OrielServer {
  app: FastifyInstance;
  ctx: ServerContext;
  /** Set when this start created the first admin and generated its password (to be shown once). */
  firstAdmin?: { name: string; password: string; generated: boolean };
  /** Set when serving https: the certificate's fingerprint, and whether Oriel made it. */
  tls?: ServerTls;
  /** Stops serving. Running VMs keep running; the next server re-attaches them. */
  close(): Promise<void>;
}

export async function createServer(config: OrielConfig, opts: { logger?: boolean } = {}): Promise<OrielServer> {
  // Checked here, at start, and not first at the next checkpoint: a bad ORIEL_CHECKPOINT_PAUSE or
  // ORIEL_CHECKPOINT_HUGE_AGAIN or ORIEL_HUGEPAGES stops the start.
  pauseModeFromEnv();
  hugeAgainFromEnv();
  hugePagesDefaultFromEnv();
  await reconcileHugePool();
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  chmodSync(config.dataDir, 0o700);
  const tls = serverTls(config);
  const trust = proxyTrust(config.trustProxy);
  const db = openDatabase(join(config.dataDir, 'oriel.db'));
  // One server for the API, the web UI and the console WebSockets: with a certificate, all of it is https/wss.
  const app = Fastify({
    ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}),
    // X-Forwarded-* are believed only from the configured proxies (req.ip, req.host, req.protocol).
    trustProxy: trust ? (address: string) => trust(address) : false,
    logger: opts.logger === false ? false : {
      level: config.logLevel,
      // Secrets never reach the log: tokens and cookies live in these headers; bodies are not logged.
      redact: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'],
    },
    bodyLimit: 1024 * 1024,
    // A request (headers and body) must arrive within this time: a client sending its body a byte now and then
    // would otherwise hold its connection for good (Node checks every 30 s).
    requestTimeout: REQUEST_TIMEOUT_MS,
  }) as unknown as FastifyInstance;
  const vms = new VmManager({
    db,
    dataDir: config.dataDir,
    cacheDir: config.cacheDir,
    qemuBinary: config.qemuBinary,
    qemuImgBinary: config.qemuImgBinary,
    accel: config.accel,
    stopTimeoutSec: config.stopTimeoutSec,
    imagesDirs: config.imagesDirs,
    serialLogMaxBytes: config.serialLogMaxBytes,
    log: (level, msg, extra) => app.log[level](extra ?? {}, msg),
    admit: {
      create: (owner, spec) => quotas.admitCreate(owner, spec),
      start: (vm) => {
        opencl.admitStart(vm);
        quotas.admitStart(vm);
      },
    },
  });
  const users = new Users(db);
  const ops = new Operations(db);
  const opencl = new OpenClRemoting(vms, config.dataDir, {
    uids: config.openclUids, allowUnsandboxed: config.openclUnsandboxed, logMaxBytes: config.serialLogMaxBytes,
    log: (msg) => app.log.warn(msg),
  });
  const networks = new Networks(db, vms, (msg, extra) => app.log.warn(extra, msg));
  const checkpoints = new CheckpointService(vms, {
    root: CheckpointService.defaultRoot(config.dataDir),
    qemuImg: config.qemuImgBinary,
    remoteUrl: config.checkpointStore,
    // The OpenCL helper writes the VM's window behind QEMU's back: its commands wait while a capture runs.
    holdRamWriters: (vmId, progress) => opencl.holdRamWriters(vmId, progress),
    networkName: (id) => networks.byId(id)?.name,
  });
  const quotas = new Quotas(db, users, vms, checkpoints, config.defaultQuota);
  const schedules = new CheckpointSchedules(db, vms, checkpoints, ops, quotas);
  const forwards = new Forwards(db, networks, vms);
  // The switch follows the VMs' events from here on, so re-attached VMs get their ports back.
  networks.start();
  opencl.start();
  const ctx: ServerContext = { config, db, vms, users, ops, checkpoints, schedules, quotas, networks, forwards };

  let firstAdmin: OrielServer['firstAdmin'];
  if (users.count() === 0) {
    const password = config.adminPassword ?? generatePassword();
    await users.create('admin', password, 'admin');
    firstAdmin = { name: 'admin', password, generated: !config.adminPassword };
  }
  // Capture workers a crashed server left end their checkpoints first; their operations end with them.
  const recovery = new CaptureRecovery(checkpoints, (msg, extra) => app.log.warn(extra, msg));
  ops.init((op) => recovery.operation(op));
  vms.use({ beforeReattach: (vm) => recovery.beforeReattach(vm) });
  await vms.init();
  recovery.vmsReady();
  schedules.start();

  // A POST with no body at all (`curl -X POST .../start`) reaches the validator as null (fastify passes null for an
  // absent body): the routes whose body is optional take it as absent instead of answering 'expected object,
  // received null'.
  app.setValidatorCompiler<ZodType>((route) => {
    const validate = validatorCompiler(route);
    return route.httpPart === 'body' ? (data: unknown) => validate(data === null ? undefined : data) : validate;
  });
  app.setSerializerCompiler(serializerCompiler);
  app.server.headersTimeout = REQUEST_TIMEOUT_MS;
  await app.register(cookie);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Oriel API',
        version: VERSION,
        description:
          'Virtual machines, consoles and checkpoints. Authenticate with `Authorization: Bearer oriel_...` or the session cookie from /api/auth/login.',
      },
      components: {
        securitySchemes: {
          token: { type: 'http', scheme: 'bearer' },
          session: { type: 'apiKey', in: 'cookie', name: 'oriel_session' },
        },
      },
      security: [{ token: [] }, { session: [] }],
    },
    transform: jsonSchemaTransform,
  });
  registerAuth(app, users);
  app.addHook('onSend', async (req, reply) => {
    // Browsers ignore this header on a connection with certificate errors, so a self-signed start is not locked in.
    if (req.protocol === 'https') reply.header('strict-transport-security', 'max-age=31536000');
  });
  app.setErrorHandler((err, req, reply) => {
    if (err instanceof OrielError) return reply.code(err.status).send({ error: err.code, message: err.message });
    if (hasZodFastifySchemaValidationErrors(err)) {
      const where = err.validationContext ?? 'request';
      const msg = err.validation
        .map((v) => `${where}${v.instancePath ? v.instancePath.replace(/\//g, '.') : ''}: ${v.message}`)
        .join('; ');
      return reply.code(400).send({ error: 'bad_request', message: msg });
    }
    if (err instanceof ZodError)
      return reply.code(400).send({ error: 'bad_request', message: err.issues.map((i) => i.message).join('; ') });
    const status = (err as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500)
      return reply.code(status).send({ error: 'bad_request', message: (err as Error).message });
    req.log.error({ err }, 'unhandled error');
    return reply.code(500).send({ error: 'internal', message: 'internal server error (see the server log)' });
  });

  app.get('/api/health', { schema: { tags: ['meta'], summary: 'Liveness (no auth)' } }, async () => ({
    ok: true,
    version: VERSION,
  }));
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  authRoutes(app, ctx);
  tokenRoutes(app, ctx);
  userRoutes(app, ctx);
  quotaRoutes(app, ctx);
  vmRoutes(app, ctx);
  networkRoutes(app, ctx);
  vmMediaRoutes(app, ctx);
  imageRoutes(app, ctx);
  await app.register(async (scope) => uploadRoutes(scope, ctx));
  operationRoutes(app, ctx);
  eventRoutes(app, ctx);
  const tickets = new ConsoleTickets();
  const previews = new ScreenPreviews(ctx, app.log);
  consoleRoutes(app, ctx, tickets, previews);
  checkpointRoutes(app, ctx);
  const limits = new ConsoleLimits();
  const upgrades = { spice: spiceUpgrade(app, ctx, tickets, limits), serial: serialUpgrade(app, ctx, limits) };
  registerUpgrades(app, upgrades, trust);
  // A console page's picture is started while the page is on its way (its script asks for it first thing).
  await registerWebUi(app, undefined, (req) => previews.warmForPage(req.url, req.cookies[SESSION_COOKIE]));

  return {
    app, ctx, firstAdmin, tls,
    async close() {
      schedules.stop();
      await app.close();
      // Operations still running (a scheduled checkpoint, a restore) end first, within reason: their last writes go
      // to the database closed below (one that does not end in time is failed or taken over by the next server).
      await ops.drain(10_000);
      vms.detachAll();
      networks.close();
      opencl.close();
      checkpoints.close();
      db.close();
    },
  };
}
