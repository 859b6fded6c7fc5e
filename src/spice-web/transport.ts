// The browser's byte transport for the SPICE core: one WebSocket per SPICE channel to the server's console proxy
// (/api/vms/{vm}/spice), binary frames carrying raw SPICE bytes. The session cookie authenticates it (same origin).
// The sockets for the channels after main are opened beside it (spares), so their handshakes are off the critical
// path.
import { ChannelType, type Connector, type Transport, type TransportHandler } from '../spice/index.ts';
import { MAIN_CLIENT_CAPS } from '../spice/channels/main.ts';
import { encodeLinkMess } from '../spice/link.ts';

/** ws(s)://this-host/path */
export function wsUrl(path: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

export class ConsoleConnectionError extends Error {
  override readonly name = 'ConsoleConnectionError';
  /** The WebSocket's close code, when the server closed it. */
  constructor(message: string, readonly code?: number) {
    super(message);
  }
}

/** The main channel's socket index.html opened, with the link message it sent and what it received since. */
interface EarlyLink {
  url: string;
  ws: WebSocket;
  link: Uint8Array;
  data: ArrayBuffer[];
  closed: CloseEvent | null;
  /** Sockets opened for the channels after main (nothing sent on them yet). */
  spares: WebSocket[];
}

declare global {
  interface Window {
    orielEarlyLink?: EarlyLink;
  }
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * index.html's sockets for `url`, once: the main channel's if it is still usable and sent what the core would
 * send, and the spares still connecting or open.
 */
function takeEarlyLink(url: string): { main?: EarlyLink; spares: WebSocket[] } {
  const e = window.orielEarlyLink;
  if (!e || e.url !== url) return { spares: [] };
  delete window.orielEarlyLink;
  const live = (ws: WebSocket) => ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN;
  const spares = (e.spares ?? []).filter(live);
  const expected = encodeLinkMess({ connectionId: 0, channelType: ChannelType.MAIN, channelId: 0,
    channelCaps: MAIN_CLIENT_CAPS });
  if (!e.closed && live(e.ws) && sameBytes(e.link, expected)) return { main: e, spares };
  e.ws.close(1000);
  return { spares };
}

/**
 * One WebSocket, as a transport once open. With `early`, the socket index.html opened: what it received so far is
 * delivered first, and the core's first write (the link message, already sent) is not sent again.
 */
function openSocket(
  url: string,
  pre?: Pick<EarlyLink, 'ws' | 'data'> & { link?: Uint8Array },
): { ws: WebSocket; transport: Promise<Transport> } {
  const ws = pre?.ws ?? new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  // Sent by index.html once open; while still connecting, index.html's open handler is replaced by ours below and
  // the core's own link message goes out as usual.
  let skip = pre?.link && ws.readyState === WebSocket.OPEN ? pre.link : undefined;
  const transport = new Promise<Transport>((resolve, reject) => {
    let handler: TransportHandler | undefined;
    const early: Uint8Array[] = (pre?.data ?? []).map((b) => new Uint8Array(b));
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
          : new ConsoleConnectionError(ev.reason || `console connection closed (${ev.code})`, ev.code);
      if (!opened) return reject(error ?? new ConsoleConnectionError('console connection refused'));
      if (handler) handler.closed(error);
      else ended = { error };
    };
    const open = () => {
      opened = true;
      resolve({
        start(h) {
          handler = h;
          for (const b of early.splice(0)) h.data(b);
          if (ended) h.closed(ended.error);
        },
        write(bytes) {
          if (skip) {
            const sent = skip;
            skip = undefined;
            if (sameBytes(bytes, sent)) return;
            ws.close(4000, 'the early link message was not this one'); // the session fails and opens anew
            return;
          }
          if (ws.readyState === WebSocket.OPEN) ws.send(bytes as Uint8Array<ArrayBuffer>);
        },
        close() {
          ws.close(1000);
        },
        bufferedAmount: () => ws.bufferedAmount,
      });
    };
    if (ws.readyState === WebSocket.OPEN) open();
    else ws.onopen = open;
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
    if (channelType !== ChannelType.MAIN) {
      while (pool.length) {
        const s = pool.shift()!;
        if (s.ws.readyState === WebSocket.CONNECTING || s.ws.readyState === WebSocket.OPEN) return s.transport;
      }
      return openSocket(url).transport;
    }
    // The main channel's socket first (the server takes upgrades in turn), then the spares.
    const early = takeEarlyLink(url);
    const main = openSocket(url, early.main).transport;
    for (let i = 0; i < spares; i++) {
      const ws = early.spares[i];
      const s = openSocket(url, ws && { ws, data: [] });
      s.transport.catch(() => undefined); // a spare refused or closed unused is not an error
      pool.push(s);
      setTimeout(() => {
        const at = pool.indexOf(s);
        if (at < 0) return;
        pool.splice(at, 1);
        s.ws.close(1000);
      }, SPARE_MS);
    }
    return main;
  };
}
