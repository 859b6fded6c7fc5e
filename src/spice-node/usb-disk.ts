// The virtual USB stick on the Node host: a disk image file as its medium (read piece by piece, written in place),
// and plugging it into a free usbredir port of a SPICE session.
import { open, stat } from 'node:fs/promises';
import {
  ChannelType, MassStorageDevice, nextEvent, type BlockDevice, type SpiceSession, type UsbDevice, type UsbredirChannel,
} from '../spice/index.ts';

/** Opens an image file as a block device (its size is used down to a whole number of 512-byte blocks). */
export async function fileDisk(path: string, readOnly = false): Promise<BlockDevice> {
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  if (!st.isFile()) throw new Error(`${path}: not a regular file`);
  if (st.size < 512) throw new Error(`${path}: ${st.size} bytes, smaller than one 512-byte block`);
  const fh = await open(path, readOnly ? 'r' : 'r+').catch((e: NodeJS.ErrnoException) => {
    throw new Error(`${path}: cannot open${readOnly ? '' : ' for writing (--read-only?)'}: ${e.code ?? e.message}`);
  });
  let closed = false;
  return {
    size: st.size,
    readOnly,
    async read(offset, length) {
      const buf = new Uint8Array(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) throw new Error(`${path}: read beyond its end`);
        got += bytesRead;
      }
      return buf;
    },
    async write(offset, data) {
      if (readOnly) throw new Error(`${path}: read-only`);
      let put = 0;
      while (put < data.length) put += (await fh.write(data, put, data.length - put, offset + put)).bytesWritten;
    },
    async flush() {
      if (!readOnly && !closed) await fh.datasync();
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}

/**
 * The session's usbredir channels (the VM's `usb-redir` ports) once every one the server listed is linked (they link
 * in any order); waits up to `timeoutMs`. A port whose link failed is left out.
 */
export async function usbPorts(session: SpiceSession, timeoutMs = 10_000): Promise<UsbredirChannel[]> {
  const ids = () => session.listed.filter((c) => c.type === ChannelType.USBREDIR).map((c) => c.id);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('the VM has no USB redirection port (usb-redir)')), timeoutMs);
  });
  timeout.catch(() => {}); // raced below; never left unhandled
  try {
    if (ids().length === 0) {
      await Promise.race([nextEvent(session.onChannel, (c) => c.type === ChannelType.USBREDIR), timeout]);
    }
    const failed = new Set<string>();
    const sub = session.onChannelError((e) => failed.add(e.channel));
    try {
      for (const id of ids()) {
        const label = `usbredir:${id}`;
        if (failed.has(label)) continue;
        const linked = session.whenChannel(ChannelType.USBREDIR, id);
        const lost = nextEvent(session.onChannelError, (e) => e.channel === label);
        await Promise.race([linked, lost, timeout]);
      }
    } finally {
      sub.dispose();
    }
  } finally {
    clearTimeout(timer);
  }
  const linked = [...session.channels.values()].filter((c) => c.type === ChannelType.USBREDIR) as UsbredirChannel[];
  return linked.sort((a, b) => a.id - b.id);
}

export interface AttachedDisk {
  port: UsbredirChannel;
  device: MassStorageDevice;
  /** Unplugs the stick and closes the image (flushed). */
  detach(): Promise<void>;
}

/** Plugs a device into the first free usbredir port of the session; the device is closed if that fails. */
export async function attachUsbDevice<D extends UsbDevice>(
  session: SpiceSession, device: D, timeoutMs?: number,
): Promise<{ port: UsbredirChannel; device: D; detach(): Promise<void> }> {
  try {
    const ports = await usbPorts(session, timeoutMs);
    const port = ports.find((p) => !p.device && !p.closed);
    if (!port) throw new Error(`all ${ports.length} USB redirection ports of the VM are in use`);
    await port.attach(device, timeoutMs);
    return { port, device, detach: () => port.detach() };
  } catch (e) {
    await device.close();
    throw e;
  }
}

/** Plugs an image file (or a block device already open) as a USB stick into the first free usbredir port. */
export async function attachUsbDisk(
  session: SpiceSession, image: string | BlockDevice, o: { readOnly?: boolean; timeoutMs?: number } = {},
): Promise<AttachedDisk> {
  const disk = typeof image === 'string' ? await fileDisk(image, o.readOnly) : image;
  return attachUsbDevice(session, new MassStorageDevice(disk), o.timeoutMs);
}
