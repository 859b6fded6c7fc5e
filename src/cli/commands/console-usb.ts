// oriel console usb attach|list TARGET: USB redirection from this machine into a VM (SPICE usbredir channels, the
// VM's `usb-redir` ports). `attach --disk FILE` plugs an image file in as a virtual USB stick and stays connected;
// Ctrl-C unplugs it (the image is flushed and closed). `attach VID:PID` redirects a real device of this machine
// (the `usb` package, loaded only then); `list` shows the VM's ports and this machine's devices.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { attachUsbDevice, fileDisk, usbPorts } from '../../spice-node/usb-disk.ts';
import { HostUsbError, listHostUsb, openHostUsb, parseVidPid } from '../../spice-node/usb-host.ts';
import { ChannelType, MassStorageDevice, UsbDeviceRefused, type SpiceSession } from '../../spice/index.ts';
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
    .description('plug a USB device of this machine (VID:PID, hex) into the VM and stay connected (Ctrl-C unplugs '
      + 'it); with --disk, an image file becomes a virtual USB stick (unmount it in the guest before unplugging)')
    .option('--disk <file>', 'an image file (raw: a filesystem or a partitioned disk) as a USB stick')
    .option('--read-only', 'the stick is write-protected'))
    .action(async (target: string, device: string | undefined, o: AttachOptions) => {
      if (device !== undefined && o.disk) throw new CliError('give either VID:PID or --disk FILE, not both');
      let ids;
      if (device !== undefined) {
        ids = parseVidPid(device);
        if (!ids) throw new CliError(`a device is VID:PID (hex), not '${device}'`);
        if (o.readOnly) throw new CliError('--read-only is for --disk');
      } else if (!o.disk) throw new CliError('nothing to attach: give --disk FILE or VID:PID');
      const what = o.disk ?? device!;
      const medium = o.disk
        && await fileDisk(o.disk, o.readOnly).catch((e: Error) => { throw new CliError(e.message); });
      const dev = medium
        ? new MassStorageDevice(medium)
        : await openHostUsb(ids!.vendorId, ids!.productId).catch((e: Error) => {
          throw e instanceof HostUsbError ? new CliError(e.message) : e;
        });
      await run(target, o, async (session) => {
        let stick;
        try {
          stick = await attachUsbDevice(session, dev, o.timeout * 1000);
        } catch (e) {
          if (e instanceof UsbDeviceRefused) throw new CliError(`${target}: ${e.message}`);
          throw e;
        }
        const kind = dev instanceof MassStorageDevice
          ? `a USB stick (${formatBytes(dev.disk.size)}${o.readOnly ? ', read-only' : ''})` : 'a USB device';
        console.error(`${what}: plugged in as ${kind} on ${stick.port.label}; Ctrl-C unplugs it`);
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
        console.error(`${what}: unplugged`);
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
        try {
          const local = await listHostUsb();
          console.log(`devices of this machine (attach TARGET VID:PID): ${local.length ? '' : 'none'}`);
          for (const d of local) {
            const id = `${d.vendorId.toString(16).padStart(4, '0')}:${d.productId.toString(16).padStart(4, '0')}`;
            console.log(`  ${id}\tbus ${d.bus} address ${d.address}\t${d.name}`);
          }
        } catch (e) {
          console.log(`devices of this machine: ${(e as Error).message}`);
        }
      }, { channelTypes: [ChannelType.USBREDIR] });
    });
}
