// TLS test fixtures: a throwaway CA and a server certificate it signed (SAN 127.0.0.1, ::1, localhost), made with
// openssl; an https server in this process with that certificate; requests that trust the CA; and the CLI run
// as a child process (asynchronously: the server it talks to lives in this process).
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { defaultConfig, type OrielConfig } from '../../src/config.ts';
import { createServer, type OrielServer } from '../../src/server/app.ts';
import { ADMIN_PASSWORD, destroyServer } from './server.ts';

const ROOT = resolve(import.meta.dirname, '../..');

export interface TestCerts {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** A key that belongs to no certificate here. */
  otherKeyFile: string;
  ca: Buffer;
  fingerprint: string;
}

export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'oriel-tls-'));
  const f = (n: string) => join(dir, n);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=Oriel test CA');
  ossl('req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost');
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  ossl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial',
    '-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf'));
  ossl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', f('other.key'));
  const ca = execFileSync('cat', [f('ca.pem')]);
  const fingerprint = new X509Certificate(execFileSync('cat', [f('server.pem')])).fingerprint256;
  return {
    dir, caFile: f('ca.pem'), certFile: f('server.pem'), keyFile: f('server.key'), otherKeyFile: f('other.key'),
    ca, fingerprint,
  };
}

export interface HttpsServer {
  url: string;
  server: OrielServer;
  config: OrielConfig;
  destroy(): Promise<void>;
}

/** An Oriel server with `certs` on 127.0.0.1 (https), admin password ADMIN_PASSWORD. */
export async function startHttpsServer(certs: TestCerts, overrides: Partial<OrielConfig> = {}): Promise<HttpsServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ot-'));
  const config: OrielConfig = {
    ...defaultConfig(), dataDir, host: '127.0.0.1', port: 0, accel: 'tcg', adminPassword: ADMIN_PASSWORD,
    logLevel: 'warn', stopTimeoutSec: 20, tlsCert: certs.certFile, tlsKey: certs.keyFile, ...overrides,
  };
  const server = await createServer(config, { logger: false });
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  const a = server.app.server.address();
  return {
    url: `https://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`,
    server, config,
    destroy: () => destroyServer(server, dataDir),
  };
}

export interface HttpsReply { status: number; headers: Record<string, string | string[] | undefined>; body: any }

/** One request over https trusting `ca`. */
export function httpsReq(
  url: string, ca: Buffer, method = 'GET', body?: unknown, headers: Record<string, string> = {},
): Promise<HttpsReply> {
  return new Promise((res, rej) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(url, {
      method, ca,
      headers: { ...headers, ...(data ? { 'content-type': 'application/json' } : {}) },
    }, (r) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (d: string) => (text += d));
      r.on('end', () => {
        let parsed: unknown = text;
        try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
        res({ status: r.statusCode ?? 0, headers: r.headers, body: parsed });
      });
    });
    req.on('error', rej);
    req.end(data);
  });
}

export interface CliResult { code: number; stdout: string; stderr: string }

/** Runs `oriel ARGS` (bin/oriel.js) with `env` added, asynchronously. */
export function runCli(args: string[], env: Record<string, string>, input?: string): Promise<CliResult> {
  return new Promise((res) => {
    const child = execFile(process.execPath, [join(ROOT, 'bin/oriel.js'), ...args], {
      cwd: ROOT, env: { ...process.env, ...env }, timeout: 60_000,
    }, (err, stdout, stderr) => {
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin?.end(input ?? '');
  });
}
