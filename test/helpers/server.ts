// Starts a real Oriel server in this process on a free port, with a fresh data directory and the shared image
// cache (~/.cache/oriel, or ORIEL_CACHE_DIR), and gives tests an HTTP client signed in as admin.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, type OrielConfig } from '../../src/config.ts';
import { createServer, type OrielServer } from '../../src/server/app.ts';
import { isOurs, readPidfile } from '../../src/host/process.ts';
import { stashDataDir, watchDataDir } from './artifacts.ts';

export const ADMIN_PASSWORD = 'admin-test-password';

export interface TestServer {
  url: string;
  server: OrielServer;
  config: OrielConfig;
  adminToken: string;
  as(token?: string): Client;
  admin: Client;
  anon: Client;
  /** Stops the server (VMs keep running, like in production). */
  stop(): Promise<void>;
  /** Starts a new server process-equivalent on the same data directory. */
  restart(): Promise<void>;
  /** Force-stops every VM, stops the server, removes the data directory. */
  destroy(): Promise<void>;
}

export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export class Client {
  constructor(private readonly base: () => string, readonly token?: string, readonly cookie?: string) {}
  async req<T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Reply<T>> {
    const h: Record<string, string> = { ...headers };
    if (body !== undefined) h['content-type'] = 'application/json';
    if (this.token) h.authorization = `Bearer ${this.token}`;
    if (this.cookie) h.cookie = this.cookie;
    const res = await fetch(this.base() + path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }
  get<T = any>(p: string) { return this.req<T>('GET', p); }
  post<T = any>(p: string, b: unknown = {}) { return this.req<T>('POST', p, b); }
  delete<T = any>(p: string) { return this.req<T>('DELETE', p); }
}

export async function startTestServer(overrides: Partial<OrielConfig> = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ot-'));
  killVmsAtExit(dataDir);
  const config: OrielConfig = {
    ...defaultConfig(),
    dataDir,
    host: '127.0.0.1',
    port: 0,
    accel: 'tcg',
    adminPassword: ADMIN_PASSWORD,
    logLevel: 'warn',
    stopTimeoutSec: 20,
    ...overrides,
  };
  let server = await createServer(config, { logger: false });
  watchDataDir(dataDir, () => server.ctx.vms);
  let url = '';
  const listen = async () => {
    await server.app.listen({ host: '127.0.0.1', port: 0 });
    const a = server.app.server.address();
    url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  };
  await listen();
  const base = () => url;
  const login = await new Client(base).post('/api/auth/login', {
    username: 'admin',
    password: ADMIN_PASSWORD,
    tokenName: 'test',
  });
  if (login.status !== 200) throw new Error(`admin login failed: ${JSON.stringify(login.body)}`);
  const adminToken = login.body.token as string;
  const t: TestServer = {
    get url() { return url; },
    get server() { return server; },
    config,
    adminToken,
    as: (token?: string) => new Client(base, token),
    admin: new Client(base, adminToken),
    anon: new Client(base),
    stop: () => server.close(),
    async restart() {
      server = await createServer(config, { logger: false });
      await listen();
    },
    destroy: () => destroyServer(server, dataDir),
  };
  return t;
}

/** Ends a test server for good: its VMs forced off, the server closed, any QEMU left killed, its data removed. */
export async function destroyServer(server: OrielServer, dataDir: string): Promise<void> {
  await stashDataDir(dataDir, { shots: true }); // kept if the test fails (artifacts.ts)
  // Each VM's stop waits for its lock, which an action still running holds (a restore the test gave up on): bounded,
  // killVmsIn below ends what is left.
  for (const vm of server.ctx.vms.list()) {
    if (['stopped', 'crashed'].includes(vm.state)) continue;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([server.ctx.vms.forceStop(vm.id).catch(() => undefined),
      new Promise((r) => { timer = setTimeout(r, 30_000); })]);
    clearTimeout(timer);
  }
  await server.close();
  killVmsIn(dataDir);
  rmSync(dataDir, { recursive: true, force: true });
}

/** Creates a user and returns a client signed in with an API token of theirs. */
export async function addUser(t: TestServer, name: string, role: 'admin' | 'user' = 'user'): Promise<Client> {
  const password = `${name}-password`;
  const c = await t.admin.post('/api/users', { name, password, role });
  if (c.status !== 201) throw new Error(`create user: ${JSON.stringify(c.body)}`);
  const l = await t.anon.post('/api/auth/login', { username: name, password, tokenName: 't' });
  return t.as(l.body.token);
}

const atExit = new Set<string>();
/** No QEMU of `dataDir` outlives this process should it end without its rig's or server's destroy (an unhandled
 * rejection in a bench or test): started detached, one would run on, holding its RAM (and huge pages) and a share
 * of the cores under every later measurement. */
export function killVmsAtExit(dataDir: string): void {
  if (atExit.size === 0) process.once('exit', () => { for (const d of atExit) killVmsIn(d); });
  atExit.add(dataDir);
}

/** Last-resort cleanup for tests that run `oriel serve` in another process: ends every QEMU whose pidfile is in
 * `dataDir` (and is really that VM's QEMU), and every checkpoint capture worker, whether or not a server is still
 * there to stop them. */
export function killVmsIn(dataDir: string): void {
  const root = join(dataDir, 'vms');
  if (!existsSync(root)) return;
  void stashDataDir(dataDir); // synchronous without screenshots; kept if the test fails (artifacts.ts)
  for (const id of readdirSync(root)) {
    const worker = readPidfile(join(root, id, 'ckpt-worker.pid'));
    if (worker !== undefined && isOurs(worker, join(root, id, 'ckpt-worker.job.json'))) {
      try { process.kill(worker, 'SIGKILL'); } catch { /* already gone */ }
    }
    const pid = readPidfile(join(root, id, 'qemu.pid'));
    if (pid !== undefined && isOurs(pid, join(root, id, 'qmp.sock'))) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  }
}
