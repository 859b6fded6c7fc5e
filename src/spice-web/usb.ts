// USB devices of this computer in the VM, through WebUSB: "USB device…" asks the browser for one (its own chooser
// lists the devices a page may claim), the core's WebUsbDevice opens and claims it, and it is plugged into a free
// usbredir port of the session (the VM's usb-redir ports, linked only now). Unplug gives it back; a device pulled out
// of this computer leaves the VM too. Hidden where there is no navigator.usb (Firefox, Safari, pages not on https).
import {
  ChannelType, UsbDeviceRefused, WebUsbDevice, nextEvent, type SpiceSession, type UsbredirChannel,
  type WebUsbDeviceLike,
} from '../spice/index.ts';

/** The part of navigator.usb used here. */
export interface WebUsbLike {
  requestDevice(o: { filters: object[] }): Promise<WebUsbDeviceLike>;
  addEventListener(type: 'disconnect', fn: (e: { device: WebUsbDeviceLike }) => void): void;
  removeEventListener(type: 'disconnect', fn: (e: { device: WebUsbDeviceLike }) => void): void;
}

export interface RedirectedUsb {
  id: number;
  name: string;
  port: UsbredirChannel;
  device: WebUsbDevice;
}

/** How long the VM's usbredir ports may take to link. */
const PORTS_TIMEOUT_MS = 10_000;

const hex4 = (n: number) => n.toString(16).padStart(4, '0');
export const usbName = (d: WebUsbDeviceLike) => d.productName || `USB device ${hex4(d.vendorId)}:${hex4(d.productId)}`;

/** The session's linked usbredir ports, once one is free (links them first); undefined if the VM has none. */
async function freePort(session: SpiceSession): Promise<UsbredirChannel | undefined> {
  const linked = () => [...session.channels.values()]
    .filter((c): c is UsbredirChannel => c.type === ChannelType.USBREDIR && !c.closed);
  const free = () => linked().find((p) => !p.device);
  if (free()) return free();
  if (!session.listed.some((c) => c.type === ChannelType.USBREDIR)) return undefined;
  session.openChannels(ChannelType.USBREDIR);
  const end = Date.now() + PORTS_TIMEOUT_MS;
  while (!free() && Date.now() < end) {
    const left = end - Date.now();
    await Promise.race([
      nextEvent(session.onChannel, (c) => c.type === ChannelType.USBREDIR),
      nextEvent(session.onChannelError, (e) => e.channel.startsWith('usbredir:')),
      new Promise((r) => setTimeout(r, left)),
    ]);
  }
  return free();
}

export class ConsoleUsb {
  readonly redirected: RedirectedUsb[] = [];
  /** What went wrong last (shown beside the button); '' when all is well. */
  message = '';
  busy = false;
  private _session: SpiceSession | undefined;
  private _nextId = 1;
  private readonly _onDisconnect = (e: { device: WebUsbDeviceLike }) => {
    const r = this.redirected.find((x) => x.device.dev === e.device);
    if (r) void this.unplug(r.id);
  };

  constructor(
    private readonly _onChange: () => void,
    private readonly _usb: WebUsbLike | undefined = (navigator as unknown as { usb?: WebUsbLike }).usb,
  ) {
    this._usb?.addEventListener('disconnect', this._onDisconnect);
  }

  /** The browser has WebUSB. */
  get available(): boolean {
    return !!this._usb;
  }

  /** Follows the console's session: devices of an ended one are already closed with their channels. */
  attach(session: SpiceSession | undefined): void {
    this._session = session;
    this.redirected.length = 0;
    this._onChange();
  }

  /** Asks the browser for a device (from a click: WebUSB needs the user's gesture) and redirects it. */
  async pick(): Promise<void> {
    if (!this._usb) return;
    let dev: WebUsbDeviceLike;
    try {
      dev = await this._usb.requestDevice({ filters: [] });
    } catch (e) {
      const name = (e as DOMException).name;
      this._say(name === 'NotFoundError' ? 'No USB device was chosen.' : `WebUSB: ${(e as Error).message}`);
      return;
    }
    await this.redirect(dev);
  }

  /** Opens and claims `dev` and plugs it into a free USB redirection port of the VM. */
  async redirect(dev: WebUsbDeviceLike): Promise<RedirectedUsb | undefined> {
    const session = this._session;
    const name = usbName(dev);
    if (!session) return this._say(`${name}: the console is not connected.`);
    this.busy = true;
    this._say('');
    let device: WebUsbDevice | undefined;
    try {
      const port = await freePort(session);
      if (!port) {
        const n = session.listed.filter((c) => c.type === ChannelType.USBREDIR).length;
        return this._say(n ? `${name}: all ${n} USB redirection ports of the VM are in use.`
          : `${name}: the VM has no USB redirection port.`);
      }
      device = await WebUsbDevice.open(dev).catch((e: Error) => {
        throw new Error(`the browser could not open it (${e.message}); is a driver of this computer using it?`);
      });
      await port.attach(device, PORTS_TIMEOUT_MS);
      const r: RedirectedUsb = { id: this._nextId++, name, port, device };
      this.redirected.push(r);
      port.onClose(() => this._forget(r));
      return r;
    } catch (e) {
      await device?.close();
      return this._say(e instanceof UsbDeviceRefused ? e.message : `${name}: ${(e as Error).message}`);
    } finally {
      this.busy = false;
      this._onChange();
    }
  }

  /** Unplugs a redirected device from the VM and gives it back to this computer. */
  async unplug(id: number): Promise<void> {
    const r = this.redirected.find((x) => x.id === id);
    if (!r) return;
    this._forget(r);
    await r.port.detach();
  }

  dispose(): void {
    this._usb?.removeEventListener('disconnect', this._onDisconnect);
    for (const r of this.redirected.splice(0)) void r.port.detach();
  }

  private _forget(r: RedirectedUsb): void {
    const at = this.redirected.indexOf(r);
    if (at < 0) return;
    this.redirected.splice(at, 1);
    this._onChange();
  }

  private _say(message: string): undefined {
    this.message = message;
    this._onChange();
    return undefined;
  }
}
