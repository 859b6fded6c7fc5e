// The browser's byte transport for the SPICE core: one WebSocket per SPICE channel to the server's console proxy
// (/api/vms/{vm}/spice), binary frames carrying raw SPICE bytes. The session cookie authenticates it (same origin).
// The sockets for the channels after main are opened beside it (spares), so their handshakes are off the critical
// path.
import { ChannelType, type Connector, type Transport, type TransportHandler } from '../../spice/index.ts';

/** ws(s)://this-host/path */
export function wsUrl(path: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

export class ConsoleConnectionError extends Error {
  override readonly name = 'ConsoleConnectionError';
}

/** One WebSocket, as a transport once open. */
function openSocket(url: string): { ws: WebSocket; transport: Promise<Transport> } {
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const transport = new Promise<Transport>((resolve, reject) => {
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
  return { ws, transport };
}

/** Spare sockets unused by then are closed (the server closes a socket without a SPICE link after 5 s). */
const SPARE_MS = 4000;

/**
 * One WebSocket per SPICE channel. When the main channel's socket is asked for, `spares` more are opened at once,
 * for the channels that follow (display, inputs, cursor): their handshakes overlap the main channel's link instead
 * of following it.
 */
export function websocketConnector(url: string, spares = 3): Connector {
  const pool: { ws: WebSocket; transport: Promise<Transport> }[] = [];
  return (channelType) => {
    if (channelType === ChannelType.MAIN) {
      for (let i = 0; i < spares; i++) {
        const s = openSocket(url);
        s.transport.catch(() => undefined); // a spare refused or closed unused is not an error
        pool.push(s);
        setTimeout(() => {
          const at = pool.indexOf(s);
          if (at < 0) return;
          pool.splice(at, 1);
          s.ws.close(1000);
        }, SPARE_MS);
      }
    } else {
      while (pool.length) {
        const s = pool.shift()!;
        if (s.ws.readyState === WebSocket.CONNECTING || s.ws.readyState === WebSocket.OPEN) return s.transport;
      }
    }
    return openSocket(url).transport;
  };
}
