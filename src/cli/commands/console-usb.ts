// oriel console usb attach|list TARGET: USB redirection from this machine into a VM (SPICE usbredir channels, the
// VM's `usb-redir` ports). `attach --disk FILE` plugs an image file in as a virtual USB stick and stays connected;
// Ctrl-C unplugs it (the image is flushed and closed). Real devices by VID:PID need a libusb binding, which this
// build does not carry: the command says so.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { attachUsbDisk, fileDisk, usbPorts } from '../../spice-node/usb-disk.ts';
import { ChannelType, UsbDeviceRefused, type SpiceSession } from '../../spice/index.ts';
import { CliError } from '../api.ts';
import { formatBytes } from '../output.ts';

type Run = <T>(
  target: string, o: { timeout: number }, fn: (s: SpiceSession) => Promise<T>,
  opts: { overallTimeout?: boolean; channelTypes?: number[] },
) => Promise<T>;

interface AttachOptions { timeout: number; disk?: string; readOnly?: boolean }

/** Lets the last usbredir packets (device_disconnect) leave before the session closes. */
const FLUSH_MS = 300;

export function usbCommands(consoleCmd: Command, common: (c: Command) => Command, run: Run): void {
  const usb = consoleCmd.command('usb').description('USB redirection into a VM (its usb-redir ports)');

  common(usb.command('attach <target> [device]')
    .description('plug a USB device into the VM and stay connected (Ctrl-C unplugs it); with --disk, an image file '
      + 'becomes a virtual USB stick (unmount it in the guest before unplugging)')
    .option('--disk <file>', 'an image file (raw: a filesystem or a partitioned disk) as a USB stick')
    .option('--read-only', 'the stick is write-protected'))
    .action(async (target: string, device: string | undefined, o: AttachOptions) => {
      if (device !== undefined && o.disk) throw new CliError('give either VID:PID or --disk FILE, not both');
      if (device !== undefined) {
        if (!/^[0-9a-f]{4}:[0-9a-f]{4}$/i.test(device)) throw new CliError(`a device is VID:PID (hex), not '${device}'`);
        throw new CliError(
          `real USB devices (${device}) need a libusb binding, which this build of oriel does not include; `
          + 'use --disk FILE for a virtual USB stick');
      }
      if (!o.disk) throw new CliError('nothing to attach: give --disk FILE (or VID:PID)');
      const disk = o.disk;
      const medium = await fileDisk(disk, o.readOnly).catch((e: Error) => { throw new CliError(e.message); });
      await run(target, o, async (session) => {
        let stick;
        try {
          stick = await attachUsbDisk(session, medium, { timeoutMs: o.timeout * 1000 });
        } catch (e) {
          if (e instanceof UsbDeviceRefused) throw new CliError(`${target}: ${e.message}`);
          throw e;
        }
        const size = formatBytes(stick.device.disk.size);
        console.error(`${disk}: plugged in as a USB stick (${size}${o.readOnly ? ', read-only' : ''}) on `
          + `${stick.port.label}; Ctrl-C unplugs it`);
        const ended = new Promise<string>((resolve) => {
          const stop = (sig: string) => () => resolve(sig);
          process.once('SIGINT', stop('SIGINT'));
          process.once('SIGTERM', stop('SIGTERM'));
          stick.port.onClose((e) => resolve(e ? `error: ${e.message}` : 'closed'));
          session.onClose((e) => resolve(e ? `error: ${e.message}` : 'closed'));
        });
        const why = await ended;
        await stick.detach();
        await sleep(FLUSH_MS);
        if (why.startsWith('error') || why === 'closed') throw new CliError(`${target}: the connection ended (${why})`);
        console.error(`${disk}: unplugged`);
      }, { overallTimeout: false, channelTypes: [ChannelType.USBREDIR] });
    });

  common(usb.command('list <target>')
    .description("the VM's USB redirection ports, and USB devices of this machine that could go there"))
    .action(async (target: string, o: { timeout: number }) => {
      await run(target, o, async (session) => {
        const ports = await usbPorts(session, o.timeout * 1000).catch(() => []);
        if (ports.length === 0) console.log(`${target}: no USB redirection ports`);
        for (const p of ports) {
          await p.whenReady(o.timeout * 1000).catch(() => {});
          const peer = p.host.parser.peer?.version ?? 'no answer';
          console.log(`${p.label}\t${peer}`);
        }
        console.log('devices of this machine: not listed (no libusb binding in this build; use attach --disk FILE)');
      }, { channelTypes: [ChannelType.USBREDIR] });
    });
}
