// The browser's byte transport for the SPICE core: one WebSocket per SPICE channel to the server's console proxy
// (/api/vms/{vm}/spice), binary frames carrying raw SPICE bytes. The session cookie authenticates it (same origin).
import type { Connector, Transport, TransportHandler } from '../../spice/index.ts';

/** ws(s)://this-host/path */
export function wsUrl(path: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

export class ConsoleConnectionError extends Error {
  override readonly name = 'ConsoleConnectionError';
}

export function websocketConnector(url: string, onSocket?: (ws: WebSocket) => void): Connector {
  return () => new Promise<Transport>((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    onSocket?.(ws);
    let handler: TransportHandler | undefined;
    const early: Uint8Array[] = [];
    let opened = false;
    let ended: { error?: Error } | undefined;
    ws.onmessage = (ev: MessageEvent<ArrayBuffer>) => {
      const bytes = new Uint8Array(ev.data);
      if (handler) handler.data(bytes);
      else early.push(bytes);
    };
    ws.onclose = (ev) => {
      // A refused upgrade (401/403/409) reaches a page only as close code 1006, without the status.
      const error =
        ev.code === 1000 || ev.code === 1001
          ? undefined
          : new ConsoleConnectionError(ev.reason || `console connection closed (${ev.code})`);
      if (!opened) return reject(error ?? new ConsoleConnectionError('console connection refused'));
      if (handler) handler.closed(error);
      else ended = { error };
    };
    ws.onopen = () => {
      opened = true;
      resolve({
        start(h) {
          handler = h;
          for (const b of early.splice(0)) h.data(b);
          if (ended) h.closed(ended.error);
        },
        write(bytes) {
          if (ws.readyState === WebSocket.OPEN) ws.send(bytes as Uint8Array<ArrayBuffer>);
        },
        close() {
          ws.close(1000);
        },
      });
    };
  });
}
