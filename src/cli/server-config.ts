// Which Oriel server a command talks to, with which token and which trust: flags, then the environment (ORIEL_URL,
// ORIEL_TOKEN, ORIEL_CA, ORIEL_FINGERPRINT), then what `oriel login` saved (mode 0600, one entry per server). Apart
// from the API client (api.ts) so that the screenshot's fast path (screenshot.ts) can reach a VM's console through
// the server without loading the client and commander.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ClientOptions } from 'ws';
import { CliError } from './errors.ts';
import { normalizeFingerprint, readCa, secureConnector, type Trust } from './tls-trust.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8470';

export function credentialsFile(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'oriel', 'credentials.json');
}

/** What `oriel login` saved for one server: the token, and how its certificate is trusted (https only). */
export interface SavedServer {
  token: string;
  fingerprint?: string;
  ca?: string;
}

/** The saved servers; entries of the older url → token form read as { token }. */
export function loadCredentials(): Record<string, SavedServer> {
  const f = credentialsFile();
  if (!existsSync(f)) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(f, 'utf8'));
  } catch (e) {
    throw new CliError(`${f} is not valid JSON (${(e as Error).message}): fix or delete it, then \`oriel login\``);
  }
  const out: Record<string, SavedServer> = {};
  for (const [url, v] of Object.entries((raw ?? {}) as Record<string, unknown>)) {
    if (typeof v === 'string') out[url] = { token: v };
    else if (v && typeof v === 'object' && typeof (v as SavedServer).token === 'string') out[url] = v as SavedServer;
  }
  return out;
}

export interface ApiOptions {
  server?: string;
  token?: string;
  /** A CA or certificate file to trust (ORIEL_CA). */
  ca?: string;
  /** The server certificate's SHA-256 fingerprint to pin (ORIEL_FINGERPRINT). */
  fingerprint?: string;
}

/** The server, token and trust a command uses: flags, then the environment, then what `oriel login` saved. */
export function resolveServer(o: ApiOptions): { url: string; token?: string; trust: Trust } {
  const url = (o.server || process.env.ORIEL_URL || DEFAULT_URL).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]/.test(url)) throw new CliError(`the server URL must be http:// or https://, not '${url}'`);
  if (url.startsWith('http:') && (o.fingerprint || o.ca)) {
    throw new CliError(`--fingerprint and --ca apply to https:// servers: ${url} is plain http, where the `
      + 'password and token would cross in clear; use its https:// URL');
  }
  const saved = loadCredentials()[url];
  const token = o.token || process.env.ORIEL_TOKEN || saved?.token;
  const pin = o.fingerprint || process.env.ORIEL_FINGERPRINT;
  const fingerprint = pin ? normalizeFingerprint(pin) : saved?.fingerprint;
  if (pin && !fingerprint)
    throw new CliError(`--fingerprint (ORIEL_FINGERPRINT) takes a SHA-256 fingerprint (64 hex digits, colons allowed), not '${pin}'`);
  const caFile = o.ca || process.env.ORIEL_CA || (pin ? undefined : saved?.ca);
  let ca: Trust['ca'];
  try {
    ca = caFile ? readCa(resolve(caFile)) : undefined;
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const trust = { ...(fingerprint ? { fingerprint } : {}), ...(ca ? { ca } : {}) };
  return { url, ...(token ? { token } : {}), trust };
}

/** What a console WebSocket to the server needs: its URL, the Authorization header, the TLS check (wss:). */
export interface ServerAccess {
  readonly url: string;
  authHeaders(): Record<string, string>;
  wsOptions(): ClientOptions;
}

/** The server's access as flags/environment/saved credentials give it, without the API client. */
export function serverAccess(o: ApiOptions = {}): ServerAccess {
  const s = resolveServer(o);
  return {
    url: s.url,
    authHeaders: (): Record<string, string> => (s.token ? { authorization: `Bearer ${s.token}` } : {}),
    wsOptions: () => (s.url.startsWith('https:')
      ? { createConnection: secureConnector(s.trust) as unknown as ClientOptions['createConnection'] }
      : {}),
  };
}
