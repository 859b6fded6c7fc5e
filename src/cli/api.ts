// The CLI's only way to Oriel: its HTTP API. The server URL and token come from flags, the environment
// (ORIEL_URL, ORIEL_TOKEN), or the credentials `oriel login` saved (mode 0600, one entry per server); for an https
// server, so does the trust: --ca (ORIEL_CA), --fingerprint (ORIEL_FINGERPRINT), or the pin login saved.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { ClientOptions } from 'ws';
import { readText, send } from './http.ts';
import {
  UntrustedServerError, normalizeFingerprint, readCa, secureConnector, untrustedMessage, type Trust,
} from './tls-trust.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8470';

export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

function credentialsFile(): string {
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

/** Saves one server's entry: a plain token string when there is no trust to remember (the older form, which older
 * CLIs read too), else { token, fingerprint?, ca? }. */
export function saveServer(url: string, entry: SavedServer): string {
  const f = credentialsFile();
  mkdirSync(dirname(f), { recursive: true, mode: 0o700 });
  const all: Record<string, SavedServer | string> = loadCredentials();
  all[url] = entry.fingerprint || entry.ca ? entry : entry.token;
  writeFileSync(f, JSON.stringify(all, null, 2) + '\n', { mode: 0o600 });
  chmodSync(f, 0o600);
  return f;
}

/** Forgets the token saved for `url` (`oriel logout`); false if there was none. */
export function removeToken(url: string): boolean {
  const f = credentialsFile();
  const all: Record<string, SavedServer | string> = loadCredentials();
  if (!(url in all)) return false;
  delete all[url];
  for (const [u, e] of Object.entries(all)) if (typeof e !== 'string' && !e.fingerprint && !e.ca) all[u] = e.token;
  writeFileSync(f, JSON.stringify(all, null, 2) + '\n', { mode: 0o600 });
  chmodSync(f, 0o600);
  return true;
}

/** Saves a token (and, for https, the trust this session used) for `api`'s server. */
export function saveToken(api: Api, token: string): string {
  const https = api.url.startsWith('https:');
  return saveServer(api.url, {
    token,
    ...(https && api.trust.fingerprint ? { fingerprint: api.trust.fingerprint } : {}),
    ...(https && api.trust.ca ? { ca: api.trust.ca.file } : {}),
  });
}

export interface ApiOptions {
  server?: string;
  token?: string;
  /** A CA or certificate file to trust (ORIEL_CA). */
  ca?: string;
  /** The server certificate's SHA-256 fingerprint to pin (ORIEL_FINGERPRINT). */
  fingerprint?: string;
}

export class Api {
  readonly url: string;
  private readonly token?: string;
  readonly trust: Trust;

  constructor(o: ApiOptions = {}) {
    this.url = (o.server || process.env.ORIEL_URL || DEFAULT_URL).replace(/\/+$/, '');
    if (!/^https?:\/\/[^/]/.test(this.url)) throw new CliError(`the server URL must be http:// or https://, not '${this.url}'`);
    if (this.url.startsWith('http:') && (o.fingerprint || o.ca)) {
      throw new CliError(`--fingerprint and --ca apply to https:// servers: ${this.url} is plain http, where the `
        + 'password and token would cross in clear; use its https:// URL');
    }
    const saved = loadCredentials()[this.url];
    this.token = o.token || process.env.ORIEL_TOKEN || saved?.token;
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
    this.trust = { ...(fingerprint ? { fingerprint } : {}), ...(ca ? { ca } : {}) };
  }

  /** Sends a request with this server's trust; connection and certificate problems become a CliError. */
  private async send(
    method: string,
    path: string,
    o: { headers: Record<string, string>; body?: string; signal?: AbortSignal },
  ): Promise<IncomingMessage> {
    try {
      return await send(this.url + path, { method, ...o, trust: this.trust });
    } catch (e) {
      if (e instanceof UntrustedServerError) throw new CliError(untrustedMessage(this.url, e));
      if ((e as Error).name === 'AbortError') throw e;
      throw new CliError(
        `cannot reach the Oriel server at ${this.url} (${(e as Error).message}); is \`oriel serve\` running? (--server or ORIEL_URL)`,
      );
    }
  }

  /** Options for a `ws` WebSocket to this server (wss: the same certificate check as the API requests). */
  wsOptions(): ClientOptions {
    if (!this.url.startsWith('https:')) return {};
    return { createConnection: secureConnector(this.trust) as unknown as ClientOptions['createConnection'] };
  }

  async request<T = unknown>(method: string, path: string, body?: unknown, { auth = true } = {}): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (auth && this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await this.send(method, path, { headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await readText(res);
    const data = text ? safeJson(text) : undefined;
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) {
      const msg = (data as { message?: string } | undefined)?.message ?? (text || res.statusMessage);
      if (status === 401 && auth && !this.token)
        throw new CliError(`${msg}\nsign in with \`oriel login\`, or set ORIEL_TOKEN`);
      throw new CliError(`${msg} (HTTP ${status})`);
    }
    return data as T;
  }

  /** The Authorization header for requests made outside `request` (the console WebSocket). */
  authHeaders(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  get<T>(path: string) { return this.request<T>('GET', path); }
  post<T>(path: string, body?: unknown) { return this.request<T>('POST', path, body ?? {}); }
  put<T>(path: string, body?: unknown) { return this.request<T>('PUT', path, body ?? {}); }
  delete<T>(path: string) { return this.request<T>('DELETE', path); }

  /** The token requests carry (flag, ORIEL_TOKEN, or the saved one), if any. */
  get bearer(): string | undefined { return this.token; }

  /** A GET whose body is read as a stream (a capture): the response once its status is 200. */
  async download(path: string, signal?: AbortSignal): Promise<IncomingMessage> {
    const res = await this.send('GET', path, { headers: this.authHeaders(), signal });
    if (res.statusCode !== 200) {
      const text = await readText(res);
      throw new CliError(`${(safeJson(text) as { message?: string } | undefined)?.message ?? text} (HTTP ${res.statusCode})`);
    }
    return res;
  }

  /** Follows the server-sent event stream, calling `on` for each event until it returns true. */
  async follow(
    on: (type: string, data: unknown) => boolean | void,
    opts: { signal?: AbortSignal; onOpen?: () => Promise<boolean | void> } = {},
  ): Promise<void> {
    const res = await this.send('GET', '/api/events', { headers: this.authHeaders(), signal: opts.signal });
    if (res.statusCode !== 200) {
      res.destroy();
      throw new CliError(`cannot follow events: HTTP ${res.statusCode}`);
    }
    try {
      // Subscribed from here on: onOpen can read the current state without missing a change.
      if (opts.onOpen && (await opts.onOpen())) return;
      await readEvents(res, on);
    } finally {
      res.destroy();
    }
  }
}

async function readEvents(res: IncomingMessage, on: (type: string, data: unknown) => boolean | void): Promise<void> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const type = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (type && data && on(type, JSON.parse(data))) return;
    }
  }
}

function safeJson(t: string): unknown {
  try {
    return JSON.parse(t);
  } catch {
    return t;
  }
}
