// The server's TLS identity: the certificate and key the admin gave (--tls-cert/--tls-key), or, when Oriel listens
// beyond loopback without one, a self-signed certificate made once with Debian's `openssl` and kept in
// <data>/tls/ (key mode 0600) so that its fingerprint, which clients pin, stays the same across restarts.
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { OrielConfig } from '../../config.ts';

export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  /** SHA-256 of the certificate, colon-separated hex (as browsers show it). */
  fingerprint: string;
  /** Made by Oriel (clients must pin its fingerprint or trust the file). */
  selfSigned: boolean;
  certFile: string;
}

const VALID_DAYS = 3650;

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\./.test(h);
}

/** The TLS identity to serve with, or undefined for plain http (loopback without a certificate, or --no-tls). */
export function serverTls(config: OrielConfig): ServerTls | undefined {
  if (config.tls === 'off') return undefined;
  if (config.tlsCert && config.tlsKey) return load(config.tlsCert, config.tlsKey, false);
  if (isLoopback(config.host)) return undefined;
  const dir = join(config.dataDir, 'tls');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  if (existsSync(certFile) && existsSync(keyFile)) {
    const t = load(certFile, keyFile, true);
    const cert = new X509Certificate(t.cert);
    if (new Date(cert.validTo).getTime() > Date.now() + 86_400_000 && cert.checkPrivateKey(createPrivateKey(t.key)))
      return t;
  }
  generateSelfSigned(dir, subjectNames(config.host));
  return load(certFile, keyFile, true);
}

export function fingerprintOf(cert: Buffer | string): string {
  return new X509Certificate(cert).fingerprint256;
}

function load(certFile: string, keyFile: string, selfSigned: boolean): ServerTls {
  const cert = readFileSync(certFile);
  return { cert, key: readFileSync(keyFile), fingerprint: fingerprintOf(cert), selfSigned, certFile };
}

/** This machine's name, the listen address (every interface address for 0.0.0.0 and ::), and localhost. */
export function subjectNames(host: string): { dns: string[]; ips: string[] } {
  const dns = new Set([hostname(), 'localhost']);
  const ips = new Set(['127.0.0.1', '::1']);
  const h = host.replace(/^\[|\]$/g, '');
  if (h === '0.0.0.0' || h === '::') {
    for (const list of Object.values(networkInterfaces()))
      for (const a of list ?? []) if (!a.address.startsWith('fe80:')) ips.add(a.address);
  } else if (isIP(h)) ips.add(h);
  else dns.add(h);
  return { dns: [...dns].filter((d) => /^[a-z0-9.-]+$/i.test(d)), ips: [...ips] };
}

/** An EC P-256 key and a self-signed certificate for `names`, written atomically to dir/cert.pem and dir/key.pem. */
export function generateSelfSigned(dir: string, names: { dns: string[]; ips: string[] }): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const tmp = mkdtempSync(join(dir, 'new-'));
  try {
    const san = [...names.dns.map((d) => `DNS:${d}`), ...names.ips.map((i) => `IP:${i}`)].join(',');
    try {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', join(tmp, 'key.pem'), '-out', join(tmp, 'cert.pem'), '-days', String(VALID_DAYS),
        '-subj', `/O=Oriel/CN=${names.dns[0] ?? 'localhost'}`,
        '-addext', `subjectAltName=${san}`, '-addext', 'extendedKeyUsage=serverAuth',
      ], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
      const why = err.code === 'ENOENT' ? 'the openssl command is not installed (apt-get install openssl)'
        : (err.stderr?.toString().trim() || err.message);
      throw new Error(`cannot make a self-signed TLS certificate in ${dir}: ${why}; or give --tls-cert and --tls-key`);
    }
    chmodSync(join(tmp, 'key.pem'), 0o600);
    renameSync(join(tmp, 'key.pem'), join(dir, 'key.pem'));
    renameSync(join(tmp, 'cert.pem'), join(dir, 'cert.pem'));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
