// A headless Node SPICE client: the core session over unix/TCP sockets or Oriel's console WebSocket,
// with node:crypto tickets. Surfaces are RgbaSurface (plain Uint8Array); `screenshotPng` returns the
// primary surface as PNG once `settledDisplay` says the picture is complete.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ChannelType,
  RgbaSurface,
  SpiceSession,
  type DisplayChannel,
  type SpiceSessionOptions,
} from '../spice/index.ts';
import { nodeEncryptTicket } from './crypto.ts';
import { encodePng } from './png.ts';
import { tcpConnector, unixConnector } from './transport.ts';
import { wsConnector, type WsClientOptions } from './ws-transport.ts';

export type HeadlessTarget =
  | { socketPath: string }
  | { host: string; port: number }
  /** An Oriel console WebSocket (ws:// or wss://…/api/vms/{vm}/spice) and its upgrade headers. */
  | { url: string; headers?: Record<string, string>; wsOptions?: WsClientOptions };

export type HeadlessOptions = HeadlessTarget & Partial<Omit<SpiceSessionOptions, 'connect' | 'encryptTicket'>>;

/** Opens a session (main channel linked, MAIN INIT received); other channels follow. */
export function openSpiceSession(opts: HeadlessOptions): Promise<SpiceSession> {
  const connect =
    'socketPath' in opts ? unixConnector(opts.socketPath)
    : 'url' in opts ? wsConnector(opts.url, opts.headers, opts.wsOptions)
    : tcpConnector(opts.host, opts.port);
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

/**
 * Resolves once display 0 has a primary surface and nothing was drawn for `quietMs` (the server
 * sends a new client the whole screen, then MARK; QEMU refreshes every 30 ms). Rejects after
 * `timeoutMs` without a primary surface; with one, resolves at the timeout even if still drawing.
 */
export async function settledDisplay(
  session: SpiceSession,
  { quietMs = 300, timeoutMs = 15_000 } = {},
): Promise<RgbaSurface> {
  const deadline = Date.now() + timeoutMs;
  const display = await Promise.race([
    session.whenChannel<DisplayChannel>(ChannelType.DISPLAY),
    sleep(timeoutMs).then(() => undefined),
  ]);
  if (!display) throw new Error(`no display channel within ${timeoutMs} ms`);
  let last = Date.now();
  const sub = display.onInvalidate(() => (last = Date.now()));
  try {
    for (;;) {
      const s = primarySurface(session);
      const now = Date.now();
      if (s && (now - last >= quietMs || now >= deadline)) return s;
      if (!s && now >= deadline) throw new Error(`no picture from the display within ${timeoutMs} ms`);
      await sleep(50);
    }
  } finally {
    sub.dispose();
  }
}
