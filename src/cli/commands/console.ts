// oriel console screenshot|type|key|mouse TARGET …: a headless SPICE client for scripts and checks.
// TARGET is spice://HOST:PORT, spice+unix:///path/to/socket, or an Oriel VM name; a VM's SPICE socket is
// only reachable by the server, so for a VM name each SPICE channel goes through the console WebSocket
// (GET /api/vms/{vm}/spice, Authorization: Bearer <token>; src/server/console/proxy.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
// The module itself, not the spice-node index, which would load the WebSocket transport (ws) every time.
import { nodeFileSource } from '../../spice-node/files.ts';
import {
  ChannelType, FileTransferError, MouseButton, MouseButtonMask, Selection, SpiceInputError, TYPE_PAUSE_MS,
  checkTypeable, describeHeads, nextEvent, parseKeyCombo, type SpiceSession, type TransferProgress,
} from '../../spice/index.ts';
import { type Api, CliError } from '../api.ts';
import {
  displayId, displaySizes, resizeTo, screenshot, withSession, type ConsoleOptions, type ScreenshotOptions,
} from './console-session.ts';
import { ProgressBar, formatBytes } from '../output.ts';
import { chooseSendPath, runShare } from './console-share.ts';
import { consoleAudioCommands } from './console-audio.ts';
import { usbCommands } from './console-usb.ts';

/** Lets the last input messages leave the socket before it is closed. */
const FLUSH_MS = 300;

/** A wait raced against an event: unref'd, so once the command is done it does not keep the process alive. */
const bound = (ms: number) => sleep(ms, undefined, { ref: false });

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
      '(needs the SPICE agent in the guest)', displaySizes)
    .option('--display <n>', 'only monitor N (0 is the first) of a guest with several', displayId))
    .action((target: string, file: string, o: ScreenshotOptions) => screenshot(target, file, o, api));

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
    async (target: string, o: ConsoleOptions & {
      move?: [number, number]; by?: [number, number]; click?: string; display?: number;
    }) => {
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
      const want = displaySizes(wxh);
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

async function clipboardOf(session: SpiceSession, timeoutS: number) {
  await session.agent.whenReady(timeoutS * 1000).catch((e: Error) => { throw new CliError(e.message); });
  return session.agent.clipboard;
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
