// The CLI's only way to Oriel: its HTTP API. The server URL and token come from flags, the environment
// (ORIEL_URL, ORIEL_TOKEN), or the credentials `oriel login` saved (mode 0600, one entry per server).
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

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

export function loadCredentials(): Record<string, string> {
  const f = credentialsFile();
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Record<string, string>) : {};
}

export function saveToken(url: string, token: string): string {
  const f = credentialsFile();
  mkdirSync(dirname(f), { recursive: true, mode: 0o700 });
  const all = loadCredentials();
  all[url] = token;
  writeFileSync(f, JSON.stringify(all, null, 2) + '\n', { mode: 0o600 });
  chmodSync(f, 0o600);
  return f;
}

/** Forgets the token saved for `url` (`oriel logout`); false if there was none. */
export function removeToken(url: string): boolean {
  const f = credentialsFile();
  const all = loadCredentials();
  if (!(url in all)) return false;
  delete all[url];
  writeFileSync(f, JSON.stringify(all, null, 2) + '\n', { mode: 0o600 });
  chmodSync(f, 0o600);
  return true;
}

export interface ApiOptions {
  server?: string;
  token?: string;
}

export class Api {
  readonly url: string;
  private readonly token?: string;

  constructor(o: ApiOptions = {}) {
    this.url = (o.server || process.env.ORIEL_URL || DEFAULT_URL).replace(/\/+$/, '');
    this.token = o.token || process.env.ORIEL_TOKEN || loadCredentials()[this.url];
  }

  async request<T = unknown>(method: string, path: string, body?: unknown, { auth = true } = {}): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (auth && this.token) headers.authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(this.url + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new CliError(
        `cannot reach the Oriel server at ${this.url} (${(e as { cause?: Error }).cause?.message ?? (e as Error).message}); is \`oriel serve\` running? (--server or ORIEL_URL)`,
      );
    }
    const text = await res.text();
    const data = text ? safeJson(text) : undefined;
    if (!res.ok) {
      const msg = (data as { message?: string } | undefined)?.message ?? (text || res.statusText);
      if (res.status === 401 && auth && !this.token)
        throw new CliError(`${msg}\nsign in with \`oriel login\`, or set ORIEL_TOKEN`);
      throw new CliError(`${msg} (HTTP ${res.status})`);
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

  /** Follows the server-sent event stream, calling `on` for each event until it returns true. */
  async follow(
    on: (type: string, data: unknown) => boolean | void,
    opts: { signal?: AbortSignal; onOpen?: () => Promise<boolean | void> } = {},
  ): Promise<void> {
    const res = await fetch(this.url + '/api/events', {
      headers: this.token ? { authorization: `Bearer ${this.token}` } : {},
      signal: opts.signal,
    });
    if (!res.ok || !res.body) throw new CliError(`cannot follow events: HTTP ${res.status}`);
    // Subscribed from here on: onOpen can read the current state without missing a change.
    if (opts.onOpen && (await opts.onOpen())) {
      await res.body.cancel();
      return;
    }
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
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
}

function safeJson(t: string): unknown {
  try {
    return JSON.parse(t);
  } catch {
    return t;
  }
}
