// oriel console screenshot|type|key|mouse TARGET …: a headless SPICE client for scripts and checks.
// TARGET is spice://HOST:PORT, spice+unix:///path/to/socket, or an Oriel VM name; a VM's SPICE socket is
// only reachable by the server, so for a VM name each SPICE channel goes through the console WebSocket
// (GET /api/vms/{vm}/spice, Authorization: Bearer <token>; src/server/console/proxy.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
// The modules themselves, not the spice-node index, which would load the WebSocket transport (ws) every time.
import { openSpiceSession, type HeadlessTarget } from '../../spice-node/client.ts';
import { ConsoleRefusedError } from '../../spice-node/errors.ts';
import { nodeFileSource } from '../../spice-node/files.ts';
import { encodePng } from '../../spice-node/png.ts';
import {
  ChannelType, ClipboardError, ConsoleController, FileTransferError, MAX_HEADS, MouseButton, MouseButtonMask,
  Selection, SpiceInputError, SpiceLinkError, TYPE_PAUSE_MS, checkTypeable, describeHeads, nextEvent, parseKeyCombo,
  type SpiceSession, type TransferProgress,
} from '../../spice/index.ts';
import { Api, CliError } from '../api.ts';
import { UntrustedServerError, untrustedMessage } from '../tls-trust.ts';
import { ProgressBar, formatBytes } from '../output.ts';
import { chooseSendPath, runShare } from './console-share.ts';
import { consoleAudioCommands } from './console-audio.ts';
import type { AudioCodecs } from '../../spice/channels/audio-codec.ts';
import { usbCommands } from './console-usb.ts';

/** Lets the last input messages leave the socket before it is closed. */
const FLUSH_MS = 300;

/** A wait raced against an event: unref'd, so once the command is done it does not keep the process alive. */
const bound = (ms: number) => sleep(ms, undefined, { ref: false });

/** How `console screenshot` says its picture was complete (PictureCompletion). */
const COMPLETED = {
  mark: 'mark',
  quiet: 'quiet (no MARK from the server; nothing drawn for a moment)',
  bounded: 'bounded (no MARK from the server; the guest was still drawing)',
} as const;

interface ConsoleOptions { password?: string; timeout: number; size?: [number, number][]; display?: number }

/** Resolves TARGET to a session target; VM names go through the server's console WebSocket. */
export function consoleTarget(target: string, api: () => Api): HeadlessTarget {
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
  api: () => Api,
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

function explain(target: string, e: unknown, server = target): Error {
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

const BUTTONS: Record<string, [number, number]> = {
  left: [MouseButton.LEFT, MouseButtonMask.LEFT],
  middle: [MouseButton.MIDDLE, MouseButtonMask.MIDDLE],
  right: [MouseButton.RIGHT, MouseButtonMask.RIGHT],
};

function pair(name: string) {
  return (v: string): [number, number] => {
    const m = /^(-?\d+),(-?\d+)$/.exec(v);
    if (!m) throw new CliError(`${name} takes X,Y (whole numbers), not '${v}'`);
    return [Number(m[1]), Number(m[2])];
  };
}

export function consoleCommands(program: Command, api: () => Api): void {
  const consoleCmd = program
    .command('console')
    .description('look at and type into a VM or SPICE server (headless SPICE client)');
  const common = (c: Command) =>
    c.option('--password <password>', 'SPICE password (direct spice:// and spice+unix:// targets)')
      .option('--timeout <seconds>', 'give up after this long (default 20)', (v) => {
        if (!/^\d+$/.test(v) || Number(v) === 0)
          throw new CliError(`--timeout must be a positive whole number, not '${v}'`);
        return Number(v);
      }, 20);

  common(consoleCmd.command('screenshot <target> <file>')
    .description('save the screen as PNG (TARGET: spice://HOST:PORT, spice+unix:///SOCKET, or a VM name)')
    .option('--size <WxH[,WxH]>', 'first ask the guest for this display size, or several monitors side by side ' +
      '(needs the SPICE agent in the guest)', sizes)
    .option('--display <n>', 'only monitor N (0 is the first) of a guest with several', displayId))
    .action(async (target: string, file: string, o: ConsoleOptions) => {
      // Only the display channel (the agent, for --size, speaks over the main channel): no inputs or cursor to link.
      await withSession(target, o, api, async (_session, c) => {
        // The server's MARK ends the picture it sends a new client; after a resize the new picture comes as
        // ordinary drawing (its MARK precedes it), so then the display must go quiet instead.
        const resized = o.size ? (await resizeTo(c, o.size, o.timeout)).changed : false;
        const po = { timeoutMs: Math.max(1000, o.timeout * 1000 - 1000), mark: !resized };
        const pic = o.display === undefined
          ? { ...await c.completePicture(po), head: undefined }
          : await c.headPicture(o.display, po).catch((e: Error) => { throw new CliError(`${target}: ${e.message}`); });
        const { width, height } = pic.image;
        writeFileSync(file, encodePng(pic.image));
        const head = pic.head ? `, display ${o.display} at ${pic.head.x},${pic.head.y}` : '';
        console.log(`wrote ${file} (${width}×${height}${head}), picture complete: ${COMPLETED[pic.completedBy]}`);
      }, { channelTypes: [ChannelType.DISPLAY] });
    });

  common(consoleCmd.command('type <target> <text>')
    .description('type text as on a US-layout keyboard (a newline in TEXT is Enter)')
    .option('--enter', 'press Enter after the text'))
    .action(async (target: string, text: string, o: ConsoleOptions & { enter?: boolean }) => {
      const all = o.enter ? `${text}\n` : text;
      // Refused before connecting, as the browser's Type box refuses it; the time typing takes is on top of --timeout.
      const strokes = usage(() => checkTypeable(all));
      await withSession(target, o, api, async (_session, c) => {
        await c.typeText(all);
        await sleep(FLUSH_MS);
      }, { extraMs: strokes * TYPE_PAUSE_MS });
    });

  common(consoleCmd.command('key <target> <combo>')
    .description('press a key or combination, e.g. ctrl+alt+delete, alt+f2, enter'))
    .action(async (target: string, combo: string, o: ConsoleOptions) => {
      const codes = usage(() => parseKeyCombo(combo));
      await withSession(target, o, api, async (_session, c) => {
        await c.pressKeys(codes);
        await sleep(FLUSH_MS);
      });
    });

  common(
    consoleCmd
      .command('mouse <target>')
      .description('move the pointer and click')
      .option(
        '--move <x,y>',
        'absolute position in screen pixels (needs a USB tablet or the SPICE agent in the VM)',
        pair('--move'),
      )
      .option('--by <dx,dy>', 'relative motion (PS/2 mouse)', pair('--by'))
      .option('--click <button>', 'left, middle or right')
      .option('--display <n>', 'with --move: the position is on monitor N (0 is the first)', displayId),
  ).action(
    async (target: string, o: ConsoleOptions & { move?: [number, number]; by?: [number, number]; click?: string }) => {
      if (!o.move && !o.by && !o.click) throw new CliError('nothing to do: give --move, --by or --click');
      const button = o.click === undefined ? undefined : BUTTONS[o.click];
      if (o.click !== undefined && !button) throw new CliError(`--click takes left, middle or right, not '${o.click}'`);
      await withSession(target, o, api, async (_session, c) => {
        const inputs = await c.keyboard();
        if (o.move && !(await c.clientMouse())) {
          throw new CliError(
            'this VM has no absolute pointer (a USB tablet or the SPICE agent): use --by DX,DY for relative motion',
          );
        }
        if (o.move) inputs.mousePosition(o.move[0], o.move[1], 0, o.display ?? 0);
        if (o.by) inputs.mouseMotion(o.by[0], o.by[1], 0);
        if (button) {
          inputs.mousePress(button[0], button[1]);
          inputs.mouseRelease(button[0], 0);
        }
        await sleep(FLUSH_MS);
      });
    },
  );

  common(consoleCmd.command('resize <target> <size>')
    .description('ask the guest to use this display size, WxH, or several monitors side by side, WxH,WxH ' +
      '(needs the SPICE agent in the guest)'))
    .action(async (target: string, wxh: string, o: ConsoleOptions) => {
      const want = sizes(wxh);
      await withSession(target, o, api, async (_session, c) => {
        const got = await resizeTo(c, want, o.timeout);
        console.log(got.heads ? `displays: ${describeHeads(got.heads)}` : `display is ${got.width}×${got.height}`);
      });
    });

  const clip = consoleCmd
    .command('clipboard')
    .description("read or set the guest's clipboard (needs the SPICE agent in the guest)");
  common(clip.command('get <target>')
    .description("print the guest's clipboard text, or save its picture with --image")
    .option('--image <file>', 'save the clipboard picture as PNG instead')
    .option('--primary', 'the PRIMARY selection (X11 select-to-copy) instead of CLIPBOARD'))
    .action(async (target: string, o: ConsoleOptions & { image?: string; primary?: boolean }) => {
      await withSession(target, o, api, async (session) => {
        const cb = await clipboardOf(session, o.timeout);
        const sel = o.primary ? Selection.PRIMARY : Selection.CLIPBOARD;
        // A newly connected client learns what the guest holds from the agent's next grab; give it a moment.
        if (!cb.guest.has(sel))
          await Promise.race([nextEvent(cb.onGuestGrab, (g) => g.selection === sel), bound(1500)]);
        if (o.image) {
          const png = await cb.readPng(sel);
          if (!png) throw new CliError(`${target}: the guest's clipboard holds no picture`);
          writeFileSync(o.image, png);
          console.error(`wrote ${o.image} (${formatBytes(png.length)})`);
        } else {
          const text = await cb.readText(sel);
          if (text === undefined) throw new CliError(`${target}: the guest's clipboard holds no text`);
          process.stdout.write(text);
        }
      });
    });
  common(
    clip
      .command('set <target> [text]')
      .description(
        'put TEXT (or standard input with "-", or a PNG with --image) on the guest clipboard; stays connected to serve pastes until the guest copies something else, --once, or --timeout',
      )
      .option('--image <file>', 'a PNG picture instead of text')
      .option('--primary', 'the PRIMARY selection instead of CLIPBOARD')
      .option('--once', 'exit after the first paste in the guest'),
  ).action(
    async (
      target: string,
      text: string | undefined,
      o: ConsoleOptions & { image?: string; primary?: boolean; once?: boolean },
    ) => {
      if (text === undefined && !o.image) throw new CliError('give TEXT, "-" for standard input, or --image FILE');
      const content = o.image
        ? { png: new Uint8Array(readFileSync(o.image)) }
        : { text: text === '-' ? readFileSync(0, 'utf8') : text };
      await withSession(
        target,
        o,
        api,
        async (session) => {
          const cb = await clipboardOf(session, o.timeout);
          const sel = o.primary ? Selection.PRIMARY : Selection.CLIPBOARD;
          await cb.set(content, sel);
          // The guest owns nothing of ours once this client disconnects (spice-vdagent releases it), so stay.
          console.error(`clipboard set; serving pastes ${o.once ? 'until the first one' : `for up to ${o.timeout} s`}`);
          await Promise.race([
            nextEvent(cb.onGuestGrab, (g) => g.selection === sel),
            o.once ? nextEvent(cb.onRequestServed, (r) => r.selection === sel) : new Promise(() => {}),
            bound(o.timeout * 1000),
          ]);
          await sleep(FLUSH_MS);
        },
        { overallTimeout: false },
      );
    },
  );

  common(consoleCmd.command('share <target> <dir>')
    .description('share a folder with the guest over WebDAV (mounted at ~/Shared in the desktop image) until Ctrl-C')
    .option('--read-only', 'the guest may read, not write (writes get 403)'))
    .action(async (target: string, dir: string, o: ConsoleOptions & { readOnly?: boolean }) => {
      await withSession(target, o, api, (session) => runShare(session, dir, !!o.readOnly, target), {
        overallTimeout: false, channelTypes: [ChannelType.WEBDAV],
      });
    });

  common(consoleCmd.command('send-file <target> <files...>')
    .description("copy files into the guest (its user's Downloads folder), as dropping them on the console does")
    .option('--stall <seconds>', 'give up when no byte moved for this long (default: --timeout)')
    .option('--via <path>', 'auto (WebDAV when the guest fetches over it, else the agent), webdav or agent', 'auto'))
    .action(async (target: string, files: string[], o: ConsoleOptions & { stall?: string; via: string }) => {
      const stallMs = Number(o.stall ?? o.timeout) * 1000;
      if (!['auto', 'webdav', 'agent'].includes(o.via))
        throw new CliError(`--via takes auto, webdav or agent, not '${o.via}'`);
      await withSession(target, o, api, async (session) => {
        const { path, share } = await chooseSendPath(session, o.via as 'auto');
        if (path === 'agent') await session.agent.whenReady(o.timeout * 1000).catch((e: Error) => {
          throw new CliError(`${target}: ${e.message}`);
        });
        const ac = new AbortController();
        const onSigint = () => ac.abort();
        process.once('SIGINT', onSigint);
        try {
          for (const path of files) {
            const src = await nodeFileSource(path).catch((e: Error) => { throw new CliError(e.message); });
            const bar = new ProgressBar();
            let landed = src.name;
            let moved = Date.now();
            const watchdog = setInterval(() => { if (Date.now() - moved > stallMs) ac.abort(); }, 500);
            const t0 = Date.now();
            try {
              const opts = {
                signal: ac.signal,
                onProgress: (p: TransferProgress) => {
                  moved = Date.now();
                  bar.update(p.sent, p.size, `${src.name} ${formatBytes(p.sent)}/${formatBytes(p.size)}`);
                },
              };
              if (path === 'webdav') landed = await share!.drops.offer(src, opts);
              else await session.agent.files.send(src, opts);
            } catch (e) {
              if (e instanceof FileTransferError && e.code === 'cancelled' && Date.now() - moved > stallMs) {
                throw new CliError(`${src.name}: no progress for ${stallMs / 1000} s, cancelled`);
              }
              throw e;
            } finally {
              clearInterval(watchdog);
              bar.end();
              await src.close();
            }
            const s = (Date.now() - t0) / 1000;
            console.error(
              `${src.name}: ${formatBytes(src.size)} in ${s.toFixed(1)} s ` +
                `(${formatBytes(src.size / Math.max(s, 0.001))}/s, via ${path})` +
                (landed !== src.name ? `, saved as ${landed}` : ''),
            );
          }
        } finally {
          process.off('SIGINT', onSigint);
        }
      }, { overallTimeout: false });
    });

  consoleAudioCommands(consoleCmd, common, (target, o, fn, channelTypes) =>
    withSession(target, o, api, (s) => fn(s), { overallTimeout: false, channelTypes, audio: o.audio }));
  usbCommands(consoleCmd, common, (target, o, fn, opts) => withSession(target, o as ConsoleOptions, api, fn, opts));
}

/** WxH, or several (monitors side by side) separated by commas. */
function sizes(v: string): [number, number][] {
  const list = v.split(',').map(size);
  if (list.length > MAX_HEADS) throw new CliError(`at most ${MAX_HEADS} monitors, not ${list.length}`);
  return list;
}

function displayId(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) >= MAX_HEADS)
    throw new CliError(`--display takes a monitor number from 0 to ${MAX_HEADS - 1}, not '${v}'`);
  return Number(v);
}

function size(v: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(v);
  if (!m || Number(m[1]) < 320 || Number(m[2]) < 200 || Number(m[1]) > 8192 || Number(m[2]) > 8192) {
    throw new CliError(`a size is WxH, from 320x200 to 8192x8192, not '${v}'`);
  }
  return [Number(m[1]), Number(m[2])];
}

async function clipboardOf(session: SpiceSession, timeoutS: number) {
  await session.agent.whenReady(timeoutS * 1000).catch((e: Error) => { throw new CliError(e.message); });
  return session.agent.clipboard;
}

/**
 * Asks for a display size and waits until the primary surface has it (ConsoleController.resizeTo); for several,
 * monitors side by side, until the display's monitors config lists them (arrangeMonitors).
 */
async function resizeTo(c: ConsoleController, want: [number, number][], timeoutS: number) {
  const fail = (e: Error): never => { throw new CliError(e.message); };
  if (want.length === 1)
    return { ...await c.resizeTo(want[0][0], want[0][1], timeoutS * 1000).catch(fail), heads: undefined };
  const got = await c.arrangeMonitors(want.map(([width, height]) => ({ width, height })), timeoutS * 1000).catch(fail);
  return { ...got.heads[0], heads: got.heads, changed: got.changed };
}

/** Runs a check of the command's own words; the core's SpiceInputError becomes a usage error. */
function usage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof SpiceInputError) throw new CliError(e.message);
    throw e;
  }
}
