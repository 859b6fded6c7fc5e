// The CLI's only way to Oriel: its HTTP API. The server URL and token come from flags, the environment
// (ORIEL_URL, ORIEL_TOKEN), or the credentials `oriel login` saved (mode 0600, one entry per server); for an https
// server, so does the trust: --ca (ORIEL_CA), --fingerprint (ORIEL_FINGERPRINT), or the pin login saved.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { ClientOptions } from 'ws';
import { OrielClient } from '../api/client.ts';
import type { ApiEvent } from '../api/events.ts';
import { refusal, type Transport } from '../api/transport.ts';
import { CliError } from './errors.ts';
import { readText, send, type SendOptions } from './http.ts';
import {
  UntrustedServerError, normalizeFingerprint, readCa, secureConnector, untrustedMessage, type Trust,
} from './tls-trust.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8470';

export { CliError } from './errors.ts';

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

/** The server, token and trust a command uses: flags, then the environment, then what `oriel login` saved. */
function resolveServer(o: ApiOptions): { url: string; token?: string; trust: Trust } {
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

/** Sends one request with the server's trust; connection and certificate problems become a CliError. */
async function reach(
  server: string, url: string, o: Omit<SendOptions, 'trust'>, trust: Trust,
): Promise<IncomingMessage> {
  try {
    return await send(url, { ...o, trust });
  } catch (e) {
    if (e instanceof UntrustedServerError) throw new CliError(untrustedMessage(server, e));
    if ((e as Error).name === 'AbortError') throw e;
    throw new CliError(
      `cannot reach the Oriel server at ${server} (${(e as Error).message}); is \`oriel serve\` running? (--server or ORIEL_URL)`,
    );
  }
}

/** The API's typed client (src/api/client.ts) over node:http(s) with this server's trust (Node's fetch cannot take
 * a custom CA or a pinned certificate); a refusal becomes a CliError naming the HTTP status. */
export class Api extends OrielClient {
  readonly url: string;
  private readonly token?: string;
  readonly trust: Trust;

  constructor(o: ApiOptions = {}) {
    const s = resolveServer(o);
    const transport: Transport = async (url, init) => {
      const res = await reach(s.url, url, { method: init.method, headers: init.headers, body: init.body }, s.trust);
      return { status: res.statusCode ?? 0, statusText: res.statusMessage, text: () => readText(res) };
    };
    super({
      baseUrl: s.url,
      transport,
      authHeaders: (): Record<string, string> => (s.token ? { authorization: `Bearer ${s.token}` } : {}),
      onError: (e, req) => {
        if (e.status === 401 && req.auth && !s.token)
          throw new CliError(`${e.message}\nsign in with \`oriel login\`, or set ORIEL_TOKEN`);
        throw new CliError(`${e.message} (HTTP ${e.status})`);
      },
    });
    this.url = s.url;
    this.token = s.token;
    this.trust = s.trust;
  }

  /** Options for a `ws` WebSocket to this server (wss: the same certificate check as the API requests). */
  wsOptions(): ClientOptions {
    if (!this.url.startsWith('https:')) return {};
    return { createConnection: secureConnector(this.trust) as unknown as ClientOptions['createConnection'] };
  }

  /** The Authorization header for requests made outside the client (the console WebSocket, the event stream). */
  authHeaders(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  /** The token requests carry (flag, ORIEL_TOKEN, or the saved one), if any. */
  get bearer(): string | undefined { return this.token; }

  /** A GET whose body is read as a stream (a network capture: `networks.captureUrl`): the response once its status
   * is 200; a refusal becomes a CliError with the server's message. */
  async download(url: string, signal?: AbortSignal): Promise<IncomingMessage> {
    const res = await reach(this.url, url, { method: 'GET', headers: this.authHeaders(), signal }, this.trust);
    if (res.statusCode !== 200) {
      const e = refusal('GET', url, { status: res.statusCode ?? 0, text: async () => '' }, await readText(res));
      throw new CliError(`${e.message} (HTTP ${e.status})`);
    }
    return res;
  }

  /** Follows the server-sent event stream, calling `on` for each event until it returns true. */
  async follow(
    on: (e: ApiEvent) => boolean | void,
    opts: { signal?: AbortSignal; onOpen?: () => Promise<boolean | void> } = {},
  ): Promise<void> {
    const res = await reach(this.url, `${this.url}/api/events`,
      { method: 'GET', headers: this.authHeaders(), signal: opts.signal }, this.trust);
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

async function readEvents(res: IncomingMessage, on: (e: ApiEvent) => boolean | void): Promise<void> {
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
      if (type && data && on({ type, data: JSON.parse(data) } as ApiEvent)) return;
    }
  }
}
