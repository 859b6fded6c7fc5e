// Real USB devices of this machine for `oriel console usb list|attach VID:PID`, through the `usb` package (v3: the
// WebUSB API over nusb, prebuilt per platform; loaded only when asked for). Its USBDevice goes to the core's
// WebUsbDevice adapter, the same one the browser's navigator.usb devices use. Kernel drivers bound to the device's
// interfaces (usb-storage, usbhid…) are detached first, as usbredirhost does; the device then belongs to the VM.
import { WebUsbDevice, type WebUsbDeviceLike } from '../spice/index.ts';

export interface HostUsbInfo {
  vendorId: number;
  productId: number;
  name: string;
  bus: string;
  address: number;
}

const hex4 = (v: number) => v.toString(16).padStart(4, '0');

/** Why this machine cannot list USB devices (no USB bus in a container, no permission…), as a sentence. */
export class HostUsbError extends Error {
  override readonly name = 'HostUsbError';
}

async function lib() {
  try {
    return (await import('usb')).usb;
  } catch (e) {
    throw new HostUsbError(`the USB library could not be loaded: ${(e as Error).message}`);
  }
}

function explain(e: unknown): never {
  const m = (e as Error).message ?? String(e);
  if (/\/sys\/bus\/usb\/devices\/? not found/.test(m)) throw new HostUsbError('this machine has no USB bus (no /sys/bus/usb)');
  throw new HostUsbError(`cannot list USB devices: ${m}`);
}

export async function listHostUsb(): Promise<HostUsbInfo[]> {
  const usb = await lib();
  const devices = await usb.getDevices().catch(explain);
  return devices.map((d) => ({
    vendorId: d.vendorId, productId: d.productId, bus: d.bus, address: d.address,
    name: [d.manufacturerName, d.productName].filter(Boolean).join(' ') || `${hex4(d.vendorId)}:${hex4(d.productId)}`,
  }));
}

/** Parses VID:PID (hex). */
export function parseVidPid(s: string): { vendorId: number; productId: number } | undefined {
  const m = /^([0-9a-f]{4}):([0-9a-f]{4})$/i.exec(s);
  return m ? { vendorId: parseInt(m[1]!, 16), productId: parseInt(m[2]!, 16) } : undefined;
}

/** Opens the first device with these ids for redirection: kernel drivers detached, every interface claimed. */
export async function openHostUsb(vendorId: number, productId: number): Promise<WebUsbDevice> {
  const usb = await lib();
  const found = await usb.findDeviceByIds(vendorId, productId).catch(explain);
  if (!found) throw new HostUsbError(`no USB device ${hex4(vendorId)}:${hex4(productId)} on this machine`);
  try {
    await found.open();
    for (const i of found.configuration?.interfaces ?? []) {
      await found.detachKernelDriver(i.interfaceNumber).catch(() => {});
    }
    return await WebUsbDevice.open(found as unknown as WebUsbDeviceLike);
  } catch (e) {
    await found.close().catch(() => {});
    const why = (e as Error).message;
    throw new HostUsbError(`cannot open ${hex4(vendorId)}:${hex4(productId)}: ${why} (permissions? a udev rule)`);
  }
}
