// A headless Node SPICE client: the core session over unix/TCP sockets or Oriel's console WebSocket,
// with node:crypto tickets. Surfaces are RgbaSurface (plain Uint8Array); `screenshotPng` encodes the primary surface
// as it is. What a console does with a session (typing, key combos, mouse mode, resize, "picture complete") is the
// core's ConsoleController (src/spice/console), the same one the browser console uses.
import { completePicture, primarySurface, type PictureOptions } from '../spice/console/picture.ts';
import { SpiceSession, type SpiceSessionOptions } from '../spice/session.ts';
import type { RgbaSurface } from '../spice/surface.ts';
import { nodeEncryptTicket } from './crypto.ts';
import { encodePng } from './png.ts';
import { tcpConnector, unixConnector } from './transport.ts';
import type { WsClientOptions } from './ws-transport.ts';

export type HeadlessTarget =
  | { socketPath: string }
  | { host: string; port: number }
  /** An Oriel console WebSocket (ws:// or wss://…/api/vms/{vm}/spice) and its upgrade headers. */
  | { url: string; headers?: Record<string, string>; wsOptions?: WsClientOptions };

export type HeadlessOptions = HeadlessTarget & Partial<Omit<SpiceSessionOptions, 'connect' | 'encryptTicket'>>;

/** Opens a session (main channel linked, MAIN INIT received); other channels follow. */
export async function openSpiceSession(opts: HeadlessOptions): Promise<SpiceSession> {
  const connect =
    'socketPath' in opts ? unixConnector(opts.socketPath)
    // ws is loaded only for WebSocket targets (a command's start time counts: `oriel console screenshot`).
    : 'url' in opts ? (await import('./ws-transport.ts')).wsConnector(opts.url, opts.headers, opts.wsOptions)
    : tcpConnector(opts.host, opts.port);
  return SpiceSession.connect({ ...opts, connect, encryptTicket: nodeEncryptTicket });
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
