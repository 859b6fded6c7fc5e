// A real USB device behind the WebUSB API, as a UsbDevice for the usbredir host: the browser's navigator.usb
// (the devices Chromium lets a page claim) and Node's `usb` package (v3 speaks WebUSB over libusb-free nusb) give
// the same USBDevice object. Typed structurally here: the core loads no DOM types.
import type { ControlSetup, TransferResult, UsbDevice } from './device.ts';
import {
  EpType, UsbSpeed, UsbStatus, epSlot, type DeviceConnect, type EndpointInfo, type InterfaceInfo,
} from './protocol.ts';

interface WebUsbEndpoint {
  endpointNumber: number; direction: 'in' | 'out'; type: 'bulk' | 'interrupt' | 'isochronous'; packetSize: number;
}
interface WebUsbAlternate {
  alternateSetting: number; interfaceClass: number; interfaceSubclass: number; interfaceProtocol: number;
  endpoints: readonly WebUsbEndpoint[];
}
interface WebUsbInterface { interfaceNumber: number; alternate: WebUsbAlternate; claimed: boolean }
interface WebUsbConfiguration { configurationValue: number; interfaces: readonly WebUsbInterface[] }
type Setup = {
  requestType: 'standard' | 'class' | 'vendor'; recipient: 'device' | 'interface' | 'endpoint' | 'other';
  request: number; value: number; index: number;
};
interface InResult { data?: DataView; status?: 'ok' | 'stall' | 'babble' }
interface OutResult { bytesWritten: number; status?: 'ok' | 'stall' | 'babble' }

/** The part of WebUSB's USBDevice this adapter uses. */
export interface WebUsbDeviceLike {
  readonly usbVersionMajor: number;
  readonly deviceClass: number;
  readonly deviceSubclass: number;
  readonly deviceProtocol: number;
  readonly vendorId: number;
  readonly productId: number;
  readonly deviceVersionMajor: number;
  readonly deviceVersionMinor: number;
  readonly deviceVersionSubminor: number;
  readonly productName?: string | null;
  readonly configuration: WebUsbConfiguration | null;
  readonly opened: boolean;
  open(): Promise<void>;
  close(): Promise<void>;
  selectConfiguration(value: number): Promise<void>;
  claimInterface(n: number): Promise<void>;
  releaseInterface(n: number): Promise<void>;
  selectAlternateInterface(n: number, alt: number): Promise<void>;
  controlTransferIn(setup: Setup, length: number): Promise<InResult>;
  controlTransferOut(setup: Setup, data?: Uint8Array<ArrayBuffer>): Promise<OutResult>;
  transferIn(endpointNumber: number, length: number): Promise<InResult>;
  transferOut(endpointNumber: number, data: Uint8Array<ArrayBuffer>): Promise<OutResult>;
  reset(): Promise<void>;
}

const TYPES = ['standard', 'class', 'vendor'] as const;
const RECIPIENTS = ['device', 'interface', 'endpoint', 'other'] as const;
const EP_TYPES = { bulk: EpType.BULK, interrupt: EpType.INTERRUPT, isochronous: EpType.ISO } as const;

/** bmRequestType → WebUSB's setup; undefined for the reserved type 3 or recipients past 3. */
export function webUsbSetup(s: ControlSetup): Setup | undefined {
  const requestType = TYPES[(s.requestType >> 5) & 3];
  const recipient = RECIPIENTS[s.requestType & 0x1f];
  if (!requestType || !recipient) return undefined;
  return { requestType, recipient, request: s.request, value: s.value, index: s.index };
}

const statusOf = (s: string | undefined) =>
  s === 'stall' ? UsbStatus.STALL : s === 'babble' ? UsbStatus.BABBLE : UsbStatus.SUCCESS;
const bytesOf = (d: DataView | undefined) =>
  (d ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array(0));

export class WebUsbDevice implements UsbDevice {
  readonly connectInfo: DeviceConnect;

  private constructor(readonly dev: WebUsbDeviceLike) {
    const eps = this._endpointList();
    // WebUSB does not tell the speed: USB 2+ devices count as high speed unless a bulk endpoint is full-speed sized.
    const fullSpeed = dev.usbVersionMajor < 2 || eps.some((e) => e.type === 'bulk' && e.packetSize < 512);
    this.connectInfo = {
      speed: fullSpeed ? UsbSpeed.FULL : UsbSpeed.HIGH,
      deviceClass: dev.deviceClass, deviceSubclass: dev.deviceSubclass, deviceProtocol: dev.deviceProtocol,
      vendorId: dev.vendorId, productId: dev.productId,
      bcdDevice: (dev.deviceVersionMajor << 8) | (dev.deviceVersionMinor << 4) | dev.deviceVersionSubminor,
    };
  }

  /** Opens the device, selects configuration 1 if none is, and claims every interface. */
  static async open(dev: WebUsbDeviceLike): Promise<WebUsbDevice> {
    if (!dev.opened) await dev.open();
    if (!dev.configuration) await dev.selectConfiguration(1);
    for (const i of dev.configuration?.interfaces ?? []) if (!i.claimed) await dev.claimInterface(i.interfaceNumber);
    return new WebUsbDevice(dev);
  }

  get configuration(): number {
    return this.dev.configuration?.configurationValue ?? 0;
  }

  interfaces(): InterfaceInfo[] {
    return (this.dev.configuration?.interfaces ?? []).map((i) => ({
      number: i.interfaceNumber, class: i.alternate.interfaceClass,
      subclass: i.alternate.interfaceSubclass, protocol: i.alternate.interfaceProtocol,
    }));
  }

  endpoints(): (EndpointInfo | undefined)[] {
    const slots: (EndpointInfo | undefined)[] = new Array(32).fill(undefined);
    slots[0] = slots[16] = { type: EpType.CONTROL, interval: 0, interface: 0, maxPacketSize: 64 };
    for (const i of this.dev.configuration?.interfaces ?? []) {
      for (const e of i.alternate.endpoints) {
        const address = e.endpointNumber | (e.direction === 'in' ? 0x80 : 0);
        slots[epSlot(address)] = {
          type: EP_TYPES[e.type], interval: e.type === 'bulk' ? 0 : 1, interface: i.interfaceNumber,
          maxPacketSize: e.packetSize,
        };
      }
    }
    return slots;
  }

  async control(s: ControlSetup, data?: Uint8Array): Promise<TransferResult> {
    const setup = webUsbSetup(s);
    if (!setup) return { status: UsbStatus.STALL };
    if (s.requestType & 0x80) {
      const r = await this.dev.controlTransferIn(setup, s.length);
      return { status: statusOf(r.status), data: bytesOf(r.data) };
    }
    const r = await this.dev.controlTransferOut(setup, data ? Uint8Array.from(data) : undefined);
    return { status: statusOf(r.status), written: r.bytesWritten };
  }

  async bulk(endpoint: number, length: number, data?: Uint8Array): Promise<TransferResult> {
    if (endpoint & 0x80) {
      const r = await this.dev.transferIn(endpoint & 0x0f, length);
      return { status: statusOf(r.status), data: bytesOf(r.data) };
    }
    const r = await this.dev.transferOut(endpoint & 0x0f, Uint8Array.from(data ?? []));
    return { status: statusOf(r.status), written: r.bytesWritten };
  }

  interrupt(endpoint: number, length: number, data?: Uint8Array): Promise<TransferResult> {
    return this.bulk(endpoint, length, data);
  }

  async setConfiguration(value: number): Promise<number> {
    try {
      await this.dev.selectConfiguration(value);
      for (const i of this.dev.configuration?.interfaces ?? []) {
        if (!i.claimed) await this.dev.claimInterface(i.interfaceNumber);
      }
      return UsbStatus.SUCCESS;
    } catch {
      return UsbStatus.STALL;
    }
  }

  async setAltSetting(iface: number, alt: number): Promise<number> {
    return this.dev.selectAlternateInterface(iface, alt).then(() => UsbStatus.SUCCESS, () => UsbStatus.STALL);
  }

  altSetting(iface: number): number {
    const i = this.dev.configuration?.interfaces.find((x) => x.interfaceNumber === iface);
    return i?.alternate.alternateSetting ?? 255;
  }

  async reset(): Promise<void> {
    await this.dev.reset().catch(() => {});
  }

  async close(): Promise<void> {
    for (const i of this.dev.configuration?.interfaces ?? []) {
      if (i.claimed) await this.dev.releaseInterface(i.interfaceNumber).catch(() => {});
    }
    await this.dev.close().catch(() => {});
  }

  private _endpointList(): WebUsbEndpoint[] {
    return (this.dev.configuration?.interfaces ?? []).flatMap((i) => [...i.alternate.endpoints]);
  }
}
