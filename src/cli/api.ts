// The CLI's only way to Oriel: its HTTP API. The server URL and token come from flags, the environment
// (ORIEL_URL, ORIEL_TOKEN), or the credentials `oriel login` saved (mode 0600, one entry per server); for an https
// server, so does the trust: --ca (ORIEL_CA), --fingerprint (ORIEL_FINGERPRINT), or the pin login saved.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { dirname } from 'node:path';
import type { ClientOptions } from 'ws';
import { OrielClient } from '../api/client.ts';
import type { ApiEvent } from '../api/events.ts';
import { refusal, type Transport } from '../api/transport.ts';
import { CliError } from './errors.ts';
import { readText, send, type SendOptions } from './http.ts';
import { UntrustedServerError, secureConnector, untrustedMessage, type Trust } from './tls-trust.ts';
import {
  credentialsFile, loadCredentials, resolveServer, type ApiOptions, type SavedServer, type ServerAccess,
} from './server-config.ts';

export { DEFAULT_URL, loadCredentials, type ApiOptions, type SavedServer } from './server-config.ts';

export { CliError } from './errors.ts';

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
export class Api extends OrielClient implements ServerAccess {
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
