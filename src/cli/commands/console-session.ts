// What every `oriel console` command shares, and `console screenshot` itself: TARGET → a SPICE session
// (withSession), errors explained as CliErrors, display sizes. Kept apart from console.ts (commander, the API client,
// sharing, audio, USB) so that src/cli/screenshot.ts, the screenshot's fast path, loads only this and the SPICE client.
import { writeFileSync } from 'node:fs';
import type { ServerAccess } from '../server-config.ts';
// The modules themselves, not the spice-node index, which would load the WebSocket transport (ws) every time.
import { openSpiceSession, type HeadlessTarget } from '../../spice-node/client.ts';
import { ConsoleRefusedError } from '../../spice-node/errors.ts';
import { encodePng } from '../../spice-node/png.ts';
import type { AudioCodecs } from '../../spice/channels/audio-codec.ts';
import { ConsoleController } from '../../spice/console/controller.ts';
import { MAX_HEADS } from '../../spice/console/monitors.ts';
import { ClipboardError } from '../../spice/vdagent/clipboard.ts';
import { FileTransferError } from '../../spice/vdagent/file-xfer.ts';
import { SpiceLinkError } from '../../spice/link.ts';
import { ChannelType } from '../../spice/proto/constants.ts';
import { SpiceInputError } from '../../spice/proto/errors.ts';
import type { SpiceSession } from '../../spice/session.ts';
import { CliError } from '../errors.ts';
import { UntrustedServerError, untrustedMessage } from '../tls-trust.ts';

/** How `console screenshot` says its picture was complete (PictureCompletion). */
const COMPLETED = {
  mark: 'mark',
  quiet: 'quiet (no MARK from the server; nothing drawn for a moment)',
  bounded: 'bounded (no MARK from the server; the guest was still drawing)',
} as const;

export interface ConsoleOptions { password?: string; timeout: number }
export interface ScreenshotOptions extends ConsoleOptions {
  /** One display size, or several monitors side by side. */
  size?: [number, number][];
  /** Only this monitor's part of the screen. */
  display?: number;
}

/** Resolves TARGET to a session target; VM names go through the server's console WebSocket. */
export function consoleTarget(target: string, api: () => ServerAccess): HeadlessTarget {
  if (target.startsWith('spice://')) {
    const u = new URL(target);
    if (!u.hostname || !u.port) throw new CliError(`'${target}': expected spice://HOST:PORT`);
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) };
  }
  if (target.startsWith('spice+unix://')) {
    const path = decodeURIComponent(target.slice('spice+unix://'.length));
    if (!path.startsWith('/')) throw new CliError(`'${target}': expected spice+unix:///absolute/path`);
    return { socketPath: path };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target))
    throw new CliError(`'${target}': unknown scheme (spice://, spice+unix://, or a VM name)`);
  const a = api();
  return {
    url: `${a.url.replace(/^http/, 'ws')}/api/vms/${encodeURIComponent(target)}/spice`,
    headers: a.authHeaders(),
    wsOptions: a.wsOptions(),
  };
}

export async function withSession<T>(
  target: string,
  o: ConsoleOptions,
  api: () => ServerAccess,
  fn: (s: SpiceSession, c: ConsoleController) => Promise<T>,
  { overallTimeout = true, channelTypes, extraMs = 0, audio }: {
    overallTimeout?: boolean; channelTypes?: number[]; audio?: AudioCodecs;
    /** Added to --timeout for work whose length is known (typing long text). */
    extraMs?: number;
  } = {},
): Promise<T> {
  const where = consoleTarget(target, api);
  const timer = overallTimeout ? AbortSignal.timeout(o.timeout * 1000 + extraMs) : new AbortController().signal;
  let session: SpiceSession;
  try {
    session = await openSpiceSession({ ...where, password: o.password, channelTypes, audio });
  } catch (e) {
    // A refused certificate is the server's: named by its https URL, as the other commands name it.
    const server = 'url' in where ? where.url.replace(/^ws/, 'http').replace(/\/api\/vms\/.*$/, '') : target;
    throw explain(target, e, server);
  }
  // Relative motion (--by) stays relative: client mouse mode only when asked for (--move).
  const controller = new ConsoleController(session);
  try {
    const timedOut = new Promise<never>((_, reject) =>
      timer.addEventListener('abort', () => reject(new CliError(`${target}: no answer within ${o.timeout} s`))),
    );
    return await Promise.race([fn(session, controller), timedOut]);
  } catch (e) {
    throw explain(target, e);
  } finally {
    controller.dispose();
    session.close();
  }
}

export function explain(target: string, e: unknown, server = target): Error {
  if (e instanceof CliError) return e;
  if (e instanceof UntrustedServerError) return new CliError(untrustedMessage(server, e));
  if (e instanceof SpiceLinkError && e.reason === 'PERMISSION_DENIED')
    return new CliError(`${target}: the SPICE password is wrong or missing (--password)`);
  if (e instanceof SpiceLinkError) return new CliError(`${target}: ${e.message}`);
  if (e instanceof ConsoleRefusedError) {
    const hint = e.status === 401 ? ' (sign in with `oriel login`, or set ORIEL_TOKEN)' : '';
    return new CliError(`${target}: ${e.message} (HTTP ${e.status})${hint}`);
  }
  if (e instanceof SpiceInputError || e instanceof ClipboardError || e instanceof FileTransferError)
    return new CliError(e.message);
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED' || code === 'ENOENT') return new CliError(`cannot connect to ${target} (${code})`);
  return new CliError(`${target}: ${(e as Error).message}`);
}

/** `console screenshot`: the picture the server sends a new client, pixel for pixel, as PNG in `file`. */
export function screenshot(target: string, file: string, o: ScreenshotOptions, api: () => ServerAccess): Promise<void> {
  // Only the display channel (the agent, for --size, speaks over the main channel): no inputs or cursor to link.
  return withSession(target, o, api, async (_session, c) => {
    // The server's MARK ends the picture it sends a new client; after a resize the new picture comes as
    // ordinary drawing (its MARK precedes it), so then the display must go quiet instead.
    const resized = o.size ? (await resizeTo(c, o.size, o.timeout)).changed : false;
    const po = { timeoutMs: Math.max(1000, o.timeout * 1000 - 1000), mark: !resized };
    if (o.display !== undefined) {
      const pic = await c.headPicture(o.display, po).catch((e: Error) => { throw new CliError(`${target}: ${e.message}`); });
      const { width, height } = pic.image;
      writeFileSync(file, encodePng(pic.image));
      const at = pic.head ? `, display ${o.display} at ${pic.head.x},${pic.head.y}` : '';
      console.log(`wrote ${file} (${width}×${height}${at}), picture complete: ${COMPLETED[pic.completedBy]}`);
      return;
    }
    // Encoded off the live surface at completion (no copy of the screen), then written.
    let png: Buffer | undefined;
    const pic = await c.completePicture({ ...po, take: (surface) => ((png = encodePng(surface)), surface) });
    const { width, height } = pic.image;
    writeFileSync(file, png!);
    console.log(`wrote ${file} (${width}×${height}), picture complete: ${COMPLETED[pic.completedBy]}`);
  }, { channelTypes: [ChannelType.DISPLAY] });
}

/** WxH, from 320x200 to 8192x8192. */
export function displaySize(v: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(v);
  if (!m || Number(m[1]) < 320 || Number(m[2]) < 200 || Number(m[1]) > 8192 || Number(m[2]) > 8192) {
    throw new CliError(`a size is WxH, from 320x200 to 8192x8192, not '${v}'`);
  }
  return [Number(m[1]), Number(m[2])];
}

/** WxH, or several (monitors side by side) separated by commas. */
export function displaySizes(v: string): [number, number][] {
  const list = v.split(',').map(displaySize);
  if (list.length > MAX_HEADS) throw new CliError(`at most ${MAX_HEADS} monitors, not ${list.length}`);
  return list;
}

export function displayId(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) >= MAX_HEADS)
    throw new CliError(`--display takes a monitor number from 0 to ${MAX_HEADS - 1}, not '${v}'`);
  return Number(v);
}

/**
 * Asks for a display size and waits until the primary surface has it (ConsoleController.resizeTo); for several,
 * monitors side by side, until the display's monitors config lists them (arrangeMonitors).
 */
export async function resizeTo(c: ConsoleController, want: [number, number][], timeoutS: number) {
  const fail = (e: Error): never => { throw new CliError(e.message); };
  if (want.length === 1)
    return { ...await c.resizeTo(want[0]![0], want[0]![1], timeoutS * 1000).catch(fail), heads: undefined };
  const got = await c.arrangeMonitors(want.map(([width, height]) => ({ width, height })), timeoutS * 1000).catch(fail);
  return { ...got.heads[0]!, heads: got.heads, changed: got.changed };
}
