// SPICE over Oriel's console WebSocket (`GET /api/vms/{vm}/spice`, src/server/console/proxy.ts): one
// WebSocket per SPICE channel, binary frames carrying the raw SPICE byte stream in both directions
// (frame boundaries mean nothing: the core's ByteQueue re-slices). Authenticated with request
// headers (Authorization: Bearer <API token>) or a console ticket in the URL.
import WebSocket, { type ClientOptions } from 'ws';
import type { Connector, Transport, TransportHandler } from '../spice/index.ts';

import { ConsoleRefusedError } from './errors.ts';

export { ConsoleRefusedError };

export function wsTransport(ws: WebSocket): Transport {
  return {
    start(handler: TransportHandler): void {
      ws.on('message', (d: Buffer, isBinary: boolean) => {
        if (!isBinary) return handler.closed(new Error('text frame on a SPICE console WebSocket'));
        handler.data(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      });
      ws.on('error', (e) => handler.closed(e));
      ws.on('close', () => handler.closed());
    },
    write(bytes: Uint8Array): void {
      if (ws.readyState === WebSocket.OPEN) ws.send(bytes, { binary: true });
    },
    close(): void {
      ws.close();
    },
    bufferedAmount: () => ws.bufferedAmount,
  };
}

/** Extra `ws` options for each channel's WebSocket (e.g. how a wss:// server's certificate is trusted). */
export type WsClientOptions = Pick<ClientOptions, 'createConnection' | 'ca' | 'rejectUnauthorized'>;

/** Opens one WebSocket to `url` per channel, with `headers` on each upgrade request. */
export function wsConnector(
  url: string,
  headers: Record<string, string> = {},
  options: WsClientOptions = {},
): Connector {
  return () =>
    new Promise<Transport>((resolve, reject) => {
      // A zero mask: both ends then skip the per-byte XOR (ws's JavaScript loop without the bufferutil addon; ~1 s of
      // CPU per 200 MiB each side). Masking guards intermediaries against bytes chosen by a browser page's script; this
      // is not a browser, and the bytes it sends are its user's.
      const ws = new WebSocket(url, {
        ...options, headers, maxPayload: 64 << 20, generateMask: (m) => void m.fill(0),
        // Offered so the server may compress what it sends (proxy.ts CONSOLE_DEFLATE); what this client sends (file
        // transfers, mostly) goes as it is: above any message's size.
        perMessageDeflate: { threshold: 2 ** 31 - 1, clientNoContextTakeover: true },
      });
      ws.binaryType = 'nodebuffer';
      ws.once('unexpected-response', (req, res) => {
        // Handled here, so ws emits no error of its own; dropping the request ends the socket quietly.
        ws.off('error', reject);
        ws.on('error', () => {});
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          let message = body || res.statusMessage || 'refused';
          try {
            message = (JSON.parse(body) as { message?: string }).message ?? message;
          } catch {
            // not JSON: keep the text
          }
          reject(new ConsoleRefusedError(res.statusCode ?? 0, message));
          req.destroy();
        });
      });
      ws.once('error', reject);
      ws.once('open', () => {
        ws.off('error', reject);
        resolve(wsTransport(ws));
      });
    });
}
