// One HTTP(S) request with node:http/node:https (Node's fetch cannot take a custom CA or a pinned certificate):
// https connections go through the trust check of tls-trust.ts.
// node:http and node:https are loaded on the first request, not with the command line (a few milliseconds of every
// start, for commands such as `console screenshot spice+unix://…` that make none).
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { secureConnector, type Trust } from './tls-trust.ts';

export interface SendOptions {
  method: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  signal?: AbortSignal;
  trust: Trust;
}

/** Resolves with the response (its body not yet read); rejects on connection, TLS or trust errors. */
export function send(url: string, o: SendOptions): Promise<IncomingMessage> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  if (!secure && u.protocol !== 'http:') return Promise.reject(new Error(`'${url}' is not an http:// or https:// URL`));
  const headers = { ...o.headers, ...(o.body !== undefined ? { 'content-length': String(Buffer.byteLength(o.body)) } : {}) };
  return new Promise((resolve, reject) => {
    const opts = { method: o.method, headers, signal: o.signal };
    const req = secure
      ? process.getBuiltinModule('node:https').request(u, {
        ...opts,
        createConnection: secureConnector(o.trust) as unknown as (...a: unknown[]) => Socket,
      })
      : process.getBuiltinModule('node:http').request(u, opts);
    req.once('response', resolve);
    req.once('error', reject);
    req.end(o.body);
  });
}

export async function readText(res: IncomingMessage): Promise<string> {
  res.setEncoding('utf8');
  let text = '';
  for await (const chunk of res) text += chunk as string;
  return text;
}
