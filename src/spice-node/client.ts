// A headless Node SPICE client: the core session over unix/TCP sockets or Oriel's console WebSocket,
// with node:crypto tickets. Surfaces are RgbaSurface (plain Uint8Array); `screenshotPng` encodes the primary surface
// as it is. What a console does with a session (typing, key combos, mouse mode, resize, "picture complete") is the
// core's ConsoleController (src/spice/console), the same one the browser console uses.
import { completePicture, primarySurface, type PictureOptions } from '../spice/console/picture.ts';
import { SpiceSession, type SpiceSessionOptions } from '../spice/session.ts';
import type { RgbaSurface } from '../spice/surface.ts';
import type { Connector } from '../spice/transport.ts';
import { loadTicketCrypto, nodeEncryptTicket } from './crypto.ts';
import { encodePng } from './png.ts';
import { tcpConnector, unixConnector } from './transport.ts';
import { withSpares } from './spare-connector.ts';
import type { WsClientOptions } from './ws-transport.ts';

export type HeadlessTarget =
  | { socketPath: string }
  | { host: string; port: number }
  /** An Oriel console WebSocket (ws:// or wss://…/api/vms/{vm}/spice) and its upgrade headers. */
  | { url: string; headers?: Record<string, string>; wsOptions?: WsClientOptions };

export type HeadlessOptions = HeadlessTarget & Partial<Omit<SpiceSessionOptions, 'connect' | 'encryptTicket'>>;

/** Opens a session (main channel linked, MAIN INIT received); other channels follow. */
export async function openSpiceSession(opts: HeadlessOptions): Promise<SpiceSession> {
  // ws is loaded only for WebSocket targets (a command's start time counts: `oriel console screenshot`). Through
  // the console WebSocket, the connections of the channels asked for are opened while the main channel links.
  const ws = 'url' in opts
    ? withSpares((await import('./ws-transport.ts')).wsConnector(opts.url, opts.headers, opts.wsOptions),
      opts.channelTypes?.length ?? 0)
    : undefined;
  const connect = loadingCryptoAfterFirst(
    'socketPath' in opts ? unixConnector(opts.socketPath)
    : 'url' in opts ? ws!.connect
    : tcpConnector(opts.host, opts.port));
  let session: SpiceSession;
  try {
    session = await SpiceSession.connect({ ...opts, connect, encryptTicket: nodeEncryptTicket });
  } catch (e) {
    ws?.dispose();
    throw e;
  }
  if (ws) session.onClose(() => ws.dispose());
  return session;
}

/**
 * `connect`, which also starts loading node:crypto once the first connection is open, after the main channel's link
 * message has gone out (setImmediate runs after the I/O callbacks and the promise jobs that write it): the loading
 * overlaps the server's making of its key instead of delaying the link.
 */
function loadingCryptoAfterFirst(connect: Connector): Connector {
  let first = true;
  return (type, id) => {
    const t = connect(type, id);
    if (first) {
      first = false;
      t.then(() => setImmediate(loadTicketCrypto), () => {});
    }
    return t;
  };
}

export function screenshotPng(session: SpiceSession): Buffer | undefined {
  const s = primarySurface(session);
  return s ? encodePng({ width: s.width, height: s.height, data: s.data }) : undefined;
}

/** Resolves with the live primary surface once its picture is complete (`completePicture`). */
export async function settledDisplay(session: SpiceSession, o: PictureOptions = {}): Promise<RgbaSurface> {
  await completePicture(session, o);
  const s = primarySurface(session);
  if (!s) throw new Error('the primary surface went away');
  return s;
}

export {
  completePicture, primarySurface, type CompletePicture, type PictureCompletion, type PictureOptions,
} from '../spice/console/picture.ts';
