// A WebUSB-shaped USBDevice whose transfers the virtual stick answers: how Chromium or the `usb` package would
// present a real stick, for tests on a machine without USB hardware (usbredir-webusb.test.ts, and the browser
// console's WebUSB test in test/web/agent-usb.ts, which drives it from the page through a playwright binding).
import type { MassStorageDevice } from '../../../src/spice/usbredir/mass-storage.ts';
import { UsbStatus } from '../../../src/spice/usbredir/protocol.ts';
import type { WebUsbDeviceLike } from '../../../src/spice/usbredir/webusb.ts';

type Setup = Parameters<WebUsbDeviceLike['controlTransferIn']>[0];
const TYPE = { standard: 0, class: 1, vendor: 2 } as const;
const RECIPIENT = { device: 0, interface: 1, endpoint: 2, other: 3 } as const;
const status = (s: number) => (s === UsbStatus.STALL ? 'stall' as const : 'ok' as const);

/** A WebUSB USBDevice over the virtual stick, as Chromium or the `usb` package would present a real stick. */
export function webUsbStick(stick: MassStorageDevice): WebUsbDeviceLike & { calls: string[] } {
  const calls: string[] = [];
  const bm = (s: Setup, dirIn: boolean) => (dirIn ? 0x80 : 0) | (TYPE[s.requestType] << 5) | RECIPIENT[s.recipient];
  const endpoints = [
    { endpointNumber: 1, direction: 'in' as const, type: 'bulk' as const, packetSize: 512 },
    { endpointNumber: 2, direction: 'out' as const, type: 'bulk' as const, packetSize: 512 },
  ];
  const alternate = {
    alternateSetting: 0, interfaceClass: 8, interfaceSubclass: 6, interfaceProtocol: 0x50, endpoints,
  };
  let configuration: WebUsbDeviceLike['configuration'] = null;
  let opened = false;
  return {
    calls, usbVersionMajor: 2, deviceClass: 0, deviceSubclass: 0, deviceProtocol: 0, vendorId: 0x0781,
    productId: 0x5567, deviceVersionMajor: 1, deviceVersionMinor: 2, deviceVersionSubminor: 6,
    get configuration() { return configuration; },
    get opened() { return opened; },
    async open() { opened = true; calls.push('open'); },
    async close() { opened = false; calls.push('close'); },
    async selectConfiguration(v) {
      calls.push(`config ${v}`);
      configuration = { configurationValue: v, interfaces: [{ interfaceNumber: 0, alternate, claimed: false }] };
    },
    async claimInterface(n) {
      calls.push(`claim ${n}`);
      (configuration!.interfaces[0] as { claimed: boolean }).claimed = true;
    },
    async releaseInterface(n) { calls.push(`release ${n}`); },
    async selectAlternateInterface(n, alt) { if (n !== 0 || alt !== 0) throw new Error('no such alt'); },
    async controlTransferIn(s, length) {
      const r = await stick.control({ ...s, requestType: bm(s, true), length });
      const d = r.data ?? new Uint8Array(0);
      return { status: status(r.status), data: new DataView(d.buffer, d.byteOffset, d.length) };
    },
    async controlTransferOut(s, data) {
      const r = await stick.control({ ...s, requestType: bm(s, false), length: data?.length ?? 0 }, data);
      return { status: status(r.status), bytesWritten: data?.length ?? 0 };
    },
    async transferIn(ep, length) {
      const r = await stick.bulk(0x80 | ep, length);
      const d = r.data ?? new Uint8Array(0);
      return { status: status(r.status), data: new DataView(d.buffer, d.byteOffset, d.length) };
    },
    async transferOut(ep, data) {
      const r = await stick.bulk(ep, data.length, data);
      return { status: status(r.status), bytesWritten: r.written ?? 0 };
    },
    async reset() { calls.push('reset'); },
  };
}

