// Oriel's configuration: embedded defaults, overridden by environment variables, then by command-line flags.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export type Accel = 'auto' | 'kvm' | 'tcg';

export interface OrielConfig {
  /** Everything Oriel owns lives here: oriel.db (SQLite), vms/<id>/ (overlays, sockets, logs). Mode 0700. */
  dataDir: string;
  /** Built guest images and downloaded packages, shared by all data directories, keyed by recipe. */
  cacheDir: string;
  host: string;
  port: number;
  accel: Accel;
  qemuBinary: string;
  qemuImgBinary: string;
  /** Password for the first admin account; generated and printed once when unset. */
  adminPassword?: string;
  /** Seconds an ACPI shutdown may take before the VM is forced off. */
  stopTimeoutSec: number;
  /** Marks session cookies Secure on every request (they are anyway on https requests). */
  secureCookies: boolean;
  /** PEM certificate (chain) and its key for https (--tls-cert, --tls-key; ORIEL_TLS_CERT, ORIEL_TLS_KEY). */
  tlsCert?: string;
  tlsKey?: string;
  /**
   * 'auto': https with the given certificate, else a self-signed one when listening beyond loopback, else plain
   * http. 'off' (--no-tls, ORIEL_TLS=off): plain http, for running behind a reverse proxy that terminates TLS.
   */
  tls: 'auto' | 'off';
  /** Proxies whose X-Forwarded-For/-Host/-Proto are believed: addresses or CIDRs (--trust-proxy, ORIEL_TRUST_PROXY). */
  trustProxy: string[];
  logLevel: string;
  /**
   * Folders whose disk images, kernels and initrds admins may name by path (--images-dir, ORIEL_IMAGES_DIRS separated
   * by ':'). Nobody else ever names a host path; with none configured, nobody does.
   */
  imagesDirs: string[];
  /** Where checkpoints are uploaded after they are taken: `s3://BUCKET/PREFIX[?endpoint=URL&region=R]`
   * (--checkpoint-store, ORIEL_CHECKPOINT_STORE); credentials from the AWS SDK's own sources (AWS_* variables). */
  checkpointStore?: string;
  /** The cap on a running VM's serial console log (ORIEL_SERIAL_LOG_MAX_BYTES; default 8 MiB; serial.log.1 holds
   * the part before). */
  serialLogMaxBytes: number;
  /** Limits of ordinary users without a quota of their own (ORIEL_DEFAULT_QUOTA); admins are unlimited by default. */
  defaultQuota: QuotaLimits;
  /** Host uids (and gids, the same numbers) for OpenCL helpers when the server runs as root, one per running helper:
   * `FIRST-LAST` (ORIEL_OPENCL_UIDS); numbers that own nothing on the host. */
  openclUids: { first: number; count: number };
  /** Let OpenCL helpers run unconfined when the server is root and bubblewrap is missing (ORIEL_OPENCL_UNSANDBOXED=1);
   * they are refused otherwise. */
  openclUnsandboxed: boolean;
  /** Console pages show QEMU's screendump of the VM while SPICE links (server/console/screen-preview.ts);
   * ORIEL_CONSOLE_PREVIEW=off turns that off. */
  consolePreview: boolean;
}

/** Per-user limits; null is unlimited. Memory and vCPUs count running VMs (paused ones too: QEMU holds their RAM);
 * disk is the provisioned (virtual) size of the user's VM disks; checkpoints the bytes their checkpoints hold. */
export interface QuotaLimits {
  vms: number | null;
  memoryMiB: number | null;
  cpus: number | null;
  diskBytes: number | null;
  checkpointBytes: number | null;
}

const GiB = 2 ** 30;
/** Built-in limits of ordinary users (README, Security). */
export const BUILTIN_QUOTA: QuotaLimits = {
  vms: 10, memoryMiB: 8192, cpus: 8, diskBytes: 256 * GiB, checkpointBytes: 256 * GiB,
};

/** A size in bytes from `1234`, `512M`, `20G`, `1.5GiB`, `100KB` (powers of 1024). Undefined if not a size. */
export function parseSize(s: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$/i.exec(s);
  if (!m) return undefined;
  const mult = 1024 ** ' kmgtp'.indexOf((m[2] || ' ').toLowerCase());
  const n = Math.round(Number(m[1]) * mult);
  return Number.isSafeInteger(n) ? n : undefined;
}

const QUOTA_KEYS: Record<string, keyof QuotaLimits> = {
  vms: 'vms', memory: 'memoryMiB', cpus: 'cpus', disk: 'diskBytes', checkpoints: 'checkpointBytes',
};

/** `vms=5,memory=4096,cpus=4,disk=100G,checkpoints=50G` (any subset; `unlimited` for no limit) over `base`. Memory is
 * in MiB; disk and checkpoints are sizes. Throws an Error naming what is wrong. */
export function parseQuotaSpec(spec: string, base: QuotaLimits = BUILTIN_QUOTA): QuotaLimits {
  const out = { ...base };
  for (const part of spec.split(',').map((x) => x.trim()).filter(Boolean)) {
    const [k, v] = part.split('=').map((x) => x.trim());
    const key = QUOTA_KEYS[k ?? ''];
    if (!key || v === undefined || v === '') {
      throw new Error(`'${part}' is not key=value with key one of ${Object.keys(QUOTA_KEYS).join(', ')}`);
    }
    if (v === 'unlimited') { out[key] = null; continue; }
    const n = key === 'diskBytes' || key === 'checkpointBytes' ? parseSize(v) : /^\d+$/.test(v) ? Number(v) : undefined;
    if (n === undefined || !Number.isSafeInteger(n)) throw new Error(`${k}=${v}: not a ${key.endsWith('Bytes') ? 'size' : 'whole number'}`);
    out[key] = n;
  }
  return out;
}

/** A number given in decimal (`30`, `2.5`); NaN for anything else (`abc`, ` `, `0x10`, `1e3`), which configProblems
 * then reports. `fallback` when unset or empty. */
function envNumber(v: string | undefined, fallback: number): number {
  if (v === undefined || v === '') return fallback;
  return /^\d+(\.\d+)?$/.test(v) ? Number(v) : NaN;
}

function xdg(envName: string, fallback: string): string {
  return process.env[envName] || join(homedir(), fallback);
}

export function defaultConfig(env: NodeJS.ProcessEnv = process.env): OrielConfig {
  return {
    dataDir: resolve(env.ORIEL_DATA_DIR || join(xdg('XDG_DATA_HOME', '.local/share'), 'oriel')),
    cacheDir: resolve(env.ORIEL_CACHE_DIR || join(xdg('XDG_CACHE_HOME', '.cache'), 'oriel')),
    host: env.ORIEL_HOST || '127.0.0.1',
    port: envNumber(env.ORIEL_PORT, 8470),
    accel: (env.ORIEL_ACCEL as Accel) || 'auto',
    qemuBinary: env.ORIEL_QEMU || 'qemu-system-x86_64',
    qemuImgBinary: env.ORIEL_QEMU_IMG || 'qemu-img',
    adminPassword: env.ORIEL_ADMIN_PASSWORD || undefined,
    stopTimeoutSec: envNumber(env.ORIEL_STOP_TIMEOUT, 30),
    secureCookies: env.ORIEL_SECURE_COOKIES === '1',
    tlsCert: env.ORIEL_TLS_CERT ? resolve(env.ORIEL_TLS_CERT) : undefined,
    tlsKey: env.ORIEL_TLS_KEY ? resolve(env.ORIEL_TLS_KEY) : undefined,
    tls: (env.ORIEL_TLS as 'auto' | 'off') || 'auto',
    trustProxy: splitList(env.ORIEL_TRUST_PROXY),
    logLevel: env.ORIEL_LOG_LEVEL || 'info',
    imagesDirs: (env.ORIEL_IMAGES_DIRS ?? '').split(':').filter(Boolean).map((d) => resolve(d)),
    ...(env.ORIEL_CHECKPOINT_STORE ? { checkpointStore: env.ORIEL_CHECKPOINT_STORE } : {}),
    serialLogMaxBytes: envNumber(env.ORIEL_SERIAL_LOG_MAX_BYTES, 8 << 20),
    defaultQuota: quotaFromEnv(env.ORIEL_DEFAULT_QUOTA),
    openclUids: parseUidRange(env.ORIEL_OPENCL_UIDS || '1500000000-1500065535'),
    openclUnsandboxed: env.ORIEL_OPENCL_UNSANDBOXED === '1',
    consolePreview: env.ORIEL_CONSOLE_PREVIEW !== 'off',
  };
}

/** `FIRST-LAST` as {first, count}; NaN parts for anything else (configProblems reports them). */
export function parseUidRange(v: string): { first: number; count: number } {
  const m = /^(\d{1,10})-(\d{1,10})$/.exec(v.trim());
  if (!m) return { first: NaN, count: NaN };
  return { first: Number(m[1]), count: Number(m[2]) - Number(m[1]) + 1 };
}

/** A bad ORIEL_DEFAULT_QUOTA leaves the built-in limits here; configProblems reports it. */
function quotaFromEnv(v: string | undefined): QuotaLimits {
  try {
    return v ? parseQuotaSpec(v) : { ...BUILTIN_QUOTA };
  } catch {
    return { ...BUILTIN_QUOTA };
  }
}

/** What is wrong with a configuration (values from the environment or flags), one message each; empty when valid. */
export function configProblems(c: OrielConfig): string[] {
  const p: string[] = [];
  if (!['auto', 'kvm', 'tcg'].includes(c.accel)) p.push(`accel (ORIEL_ACCEL, --accel) must be auto, kvm or tcg, not '${c.accel}'`);
  if (!Number.isInteger(c.port) || c.port < 0 || c.port > 65535) p.push(`port (ORIEL_PORT, --port) must be a whole number from 0 to 65535, not '${c.port}'`);
  if (!Number.isFinite(c.stopTimeoutSec) || c.stopTimeoutSec < 0 || c.stopTimeoutSec > 3600) {
    p.push(`ORIEL_STOP_TIMEOUT must be a number of seconds from 0 to 3600, not '${process.env.ORIEL_STOP_TIMEOUT ?? c.stopTimeoutSec}'`);
  }
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(c.logLevel)) {
    p.push(`ORIEL_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, not '${c.logLevel}'`);
  }
  if (!Number.isInteger(c.serialLogMaxBytes) || c.serialLogMaxBytes < 4096) {
    p.push(`ORIEL_SERIAL_LOG_MAX_BYTES must be a whole number of bytes, at least 4096, not '${c.serialLogMaxBytes}'`);
  }
  const u = c.openclUids;
  if (!Number.isInteger(u.first) || !Number.isInteger(u.count) || u.first < 1000 || u.count < 1
    || u.first + u.count - 1 > 0xfffffffe) {
    const shown = Number.isNaN(u.first) ? process.env.ORIEL_OPENCL_UIDS : `${u.first}-${u.first + u.count - 1}`;
    p.push(`ORIEL_OPENCL_UIDS must be FIRST-LAST, uids from 1000 to 4294967294 that own nothing on the host, not '${
      shown}'`);
  }
  const preview = process.env.ORIEL_CONSOLE_PREVIEW;
  if (preview !== undefined && !['on', 'off'].includes(preview)) {
    p.push(`ORIEL_CONSOLE_PREVIEW must be on or off, not '${preview}'`);
  }
  if (process.env.ORIEL_DEFAULT_QUOTA) {
    try { parseQuotaSpec(process.env.ORIEL_DEFAULT_QUOTA); } catch (e) { p.push(`ORIEL_DEFAULT_QUOTA: ${(e as Error).message}`); }
  }
  p.push(...tlsProblems(c), ...trustProxyProblems(c.trustProxy));
  for (const d of c.imagesDirs) {
    const inside = (x: string) => x === d || x.startsWith(d.endsWith('/') ? d : `${d}/`);
    if (inside(c.dataDir) || inside(c.cacheDir)) {
      p.push(`image folder ${d} holds Oriel's data or cache directory: admins could then hand a guest the database`);
    }
  }
  return p;
}

export function splitList(v: string | undefined): string[] {
  return (v ?? '').split(',').map((x) => x.trim()).filter(Boolean);
}

function tlsProblems(c: OrielConfig): string[] {
  if (!['auto', 'off'].includes(c.tls)) return [`ORIEL_TLS must be auto or off, not '${c.tls}'`];
  if (!c.tlsCert && !c.tlsKey) return [];
  if (c.tls === 'off') return ['--no-tls (ORIEL_TLS=off) and a TLS certificate (--tls-cert, ORIEL_TLS_CERT) contradict'];
  if (!c.tlsCert || !c.tlsKey) return ['--tls-cert (ORIEL_TLS_CERT) and --tls-key (ORIEL_TLS_KEY) go together: give both'];
  const read = (file: string, what: string): string | Error => {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      return new Error(`cannot read the TLS ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const certPem = read(c.tlsCert, 'certificate (--tls-cert, ORIEL_TLS_CERT)');
  const keyPem = read(c.tlsKey, 'key (--tls-key, ORIEL_TLS_KEY)');
  const errs = [certPem, keyPem].filter((x): x is Error => x instanceof Error).map((e) => e.message);
  if (errs.length) return errs;
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem as string);
  } catch {
    return [`${c.tlsCert} is not a PEM certificate (--tls-cert, ORIEL_TLS_CERT)`];
  }
  try {
    if (!cert.checkPrivateKey(createPrivateKey(keyPem as string)))
      return [`the TLS key ${c.tlsKey} does not belong to the certificate ${c.tlsCert}`];
  } catch {
    return [`${c.tlsKey} is not a PEM private key, or it is encrypted (--tls-key, ORIEL_TLS_KEY)`];
  }
  return [];
}

function trustProxyProblems(list: string[]): string[] {
  return list
    .filter((a) => {
      const [addr, bits, extra] = a.split('/');
      const v = isIP(addr ?? '');
      if (!v || extra !== undefined) return true;
      return bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > (v === 4 ? 32 : 128));
    })
    .map((a) => `--trust-proxy (ORIEL_TRUST_PROXY) takes IP addresses or CIDRs separated by commas, not '${a}'`);
}

/** A short-lived scratch folder for tests and benchmarks, short enough for unix socket paths (< 108 bytes). */
export function scratchRoot(): string {
  return tmpdir();
}
