// A headless Node SPICE client: the core session over unix/TCP sockets or Oriel's console WebSocket,
// with node:crypto tickets. Surfaces are RgbaSurface (plain Uint8Array); `completePicture` waits until the
// server marked the picture complete, `screenshotPng` encodes the primary surface as it is.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ChannelType,
  RgbaSurface,
  SpiceSession,
  type DisplayChannel,
  type RgbaImage,
  type SpiceSessionOptions,
} from '../spice/index.ts';
import { nodeEncryptTicket } from './crypto.ts';
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
  const connect =
    'socketPath' in opts ? unixConnector(opts.socketPath)
    : 'url' in opts ? ws!.connect
    : tcpConnector(opts.host, opts.port);
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

/** The primary surface of display 0 as an RgbaSurface, if one exists. */
export function primarySurface(session: SpiceSession): RgbaSurface | undefined {
  const s = session.display?.primary?.surface;
  return s instanceof RgbaSurface ? s : undefined;
}

export function screenshotPng(session: SpiceSession): Buffer | undefined {
  const s = primarySurface(session);
  return s ? encodePng({ width: s.width, height: s.height, data: s.data }) : undefined;
}

/** How a picture was judged complete (`completePicture`). */
export type PictureCompletion =
  /** The server's MARK: it sent the whole screen (the normal case, right after connecting). */
  | 'mark'
  /** No MARK came (or was not waited for): nothing was drawn for the quiet period. */
  | 'quiet'
  /** No MARK, and the guest kept drawing until the bound: the picture as it was then. */
  | 'bounded';

export interface CompletePicture {
  /** A copy of the primary surface, taken at completion. */
  image: RgbaImage;
  completedBy: PictureCompletion;
  /** Milliseconds from the call to completion. */
  ms: number;
}

export interface PictureOptions {
  /** An error after this long without a primary surface (no display channel, no picture). */
  timeoutMs?: number;
  /** Wait for the server's MARK (false: after a resize, whose MARK comes before the new picture is drawn). */
  mark?: boolean;
  /** With a primary surface but no MARK for this long, fall back to waiting for a quiet display. */
  markWaitMs?: number;
  /** The fallback: no drawing for this long … */
  quietMs?: number;
  /** … or, if the guest keeps drawing, take the picture after this long in the fallback. */
  settleMs?: number;
}

/**
 * The primary surface of display 0 once its picture is complete: normally at the server's MARK, which follows the
 * whole screen sent to a new client (every draw before it already applied: the display channel handles messages in
 * order and decodes synchronously, and the copy is taken inside the MARK event). Without a MARK (older servers, or
 * `mark: false`), a short settle: a quiet display or `settleMs`. Rejects after `timeoutMs` without a picture.
 */
export async function completePicture(session: SpiceSession, o: PictureOptions = {}): Promise<CompletePicture> {
  const { timeoutMs = 15_000, mark = true, markWaitMs = 2000, quietMs = 300, settleMs = 2000 } = o;
  const t0 = Date.now();
  const copy = (completedBy: PictureCompletion): CompletePicture | undefined => {
    const s = primarySurface(session);
    return s && { image: { width: s.width, height: s.height, data: s.data.slice() }, completedBy, ms: Date.now() - t0 };
  };
  const display = await Promise.race([
    session.whenChannel<DisplayChannel>(ChannelType.DISPLAY),
    // unref'd: a pending bound must not keep the process alive once the picture is written
    sleep(timeoutMs, undefined, { ref: false }).then(() => undefined),
  ]);
  if (!display) throw new Error(`no display channel within ${timeoutMs} ms`);
  if (mark && display.marked) return copy('mark')!;
  return new Promise<CompletePicture>((resolve, reject) => {
    let lastDraw = Date.now();
    /** When the fallback started (a primary surface and no MARK after markWaitMs, or not waiting for one). */
    let settling: number | undefined;
    let firstPicture: number | undefined;
    const subs = [
      display.onInvalidate(() => (lastDraw = Date.now())),
      display.onMark(() => {
        if (mark && display.marked) done(copy('mark'));
      }),
      display.onClose((e) => fail(new Error(`the display channel closed before the picture was complete${e ? `: ${e.message}` : ''}`))),
    ];
    const timer = setInterval(() => {
      const now = Date.now();
      if (!primarySurface(session)) {
        if (now - t0 >= timeoutMs) fail(new Error(`no picture from the display within ${timeoutMs} ms`));
        return;
      }
      firstPicture ??= now;
      if (settling === undefined && (!mark || now - firstPicture >= markWaitMs)) settling = now;
      if (settling === undefined) return;
      if (now - lastDraw >= quietMs) done(copy('quiet'));
      else if (now - settling >= settleMs) done(copy('bounded'));
    }, 25);
    const cleanup = () => {
      clearInterval(timer);
      for (const s of subs) s.dispose();
    };
    function done(p: CompletePicture | undefined) {
      if (!p) return;
      cleanup();
      resolve(p);
    }
    function fail(e: Error) {
      cleanup();
      reject(e);
    }
  });
}

/** Resolves with the live primary surface once its picture is complete (`completePicture`). */
export async function settledDisplay(session: SpiceSession, o: PictureOptions = {}): Promise<RgbaSurface> {
  await completePicture(session, o);
  const s = primarySurface(session);
  if (!s) throw new Error('the primary surface went away');
  return s;
}
