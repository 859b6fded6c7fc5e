// A headless Node SPICE client: the core session over unix/TCP sockets with node:crypto tickets.
// Surfaces are RgbaSurface (plain Uint8Array); `screenshot` returns the primary surface as PNG.
import { RgbaSurface, SpiceSession, type SpiceSessionOptions } from '../spice/index.ts';
import { nodeEncryptTicket } from './crypto.ts';
import { encodePng } from './png.ts';
import { tcpConnector, unixConnector } from './transport.ts';

export type HeadlessTarget = { socketPath: string } | { host: string; port: number };

export type HeadlessOptions = HeadlessTarget & Partial<Omit<SpiceSessionOptions, 'connect' | 'encryptTicket'>>;

/** Opens a session (main channel linked, MAIN INIT received); other channels follow. */
export function openSpiceSession(opts: HeadlessOptions): Promise<SpiceSession> {
  const connect = 'socketPath' in opts ? unixConnector(opts.socketPath) : tcpConnector(opts.host, opts.port);
  return SpiceSession.connect({ ...opts, connect, encryptTicket: nodeEncryptTicket });
}

/** The primary surface of display 0 as an RgbaSurface, if one exists. */
export function primarySurface(session: SpiceSession): RgbaSurface | undefined {
  const s = session.display?.primary?.surface;
  return s instanceof RgbaSurface ? s : undefined;
}

export function screenshotPng(session: SpiceSession): Buffer | undefined {
  const s = primarySurface(session);
  return s ? encodePng({ width: s.width, height: s.height, data: s.data }) : undefined;
}
