// The WebUSB adapter (navigator.usb in the browser, the `usb` package in Node) without USB hardware: a WebUSB-shaped
// device whose transfers the virtual stick answers stands in for a real one, so the whole path — usbredir packets,
// WebUsbDevice's setup/status mapping, WebUSB calls — carries real descriptors and SCSI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MassStorageDevice } from '../../src/spice/usbredir/mass-storage.ts';
import { MemoryDisk } from '../../src/spice/usbredir/memory-disk.ts';
import { UsbSpeed, UsbStatus, UsbredirType as T } from '../../src/spice/usbredir/protocol.ts';
import { WebUsbDevice, webUsbSetup, type WebUsbDeviceLike } from '../../src/spice/usbredir/webusb.ts';
import { GuestSide } from './helpers/usbredir-guest.ts';

type Setup = Parameters<WebUsbDeviceLike['controlTransferIn']>[0];
const TYPE = { standard: 0, class: 1, vendor: 2 } as const;
const RECIPIENT = { device: 0, interface: 1, endpoint: 2, other: 3 } as const;
const status = (s: number) => (s === UsbStatus.STALL ? 'stall' as const : 'ok' as const);

/** A WebUSB USBDevice over the virtual stick, as Chromium or the `usb` package would present a real stick. */
function webUsbStick(stick: MassStorageDevice): WebUsbDeviceLike & { calls: string[] } {
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

test('bmRequestType maps to WebUSB setups; the reserved type is refused', () => {
  const s = { request: 6, value: 0x100, index: 0, length: 18 };
  const rest = { request: 6, value: 0x100, index: 0 };
  assert.deepEqual(webUsbSetup({ ...s, requestType: 0x80 }), { requestType: 'standard', recipient: 'device', ...rest });
  assert.deepEqual(webUsbSetup({ ...s, requestType: 0xa1 }), { requestType: 'class', recipient: 'interface', ...rest });
  assert.deepEqual(webUsbSetup({ ...s, requestType: 0x42 })?.recipient, 'endpoint');
  assert.equal(webUsbSetup({ ...s, requestType: 0x60 }), undefined);
  assert.equal(webUsbSetup({ ...s, requestType: 0x05 }), undefined);
});

test('a WebUSB device is opened, configured, claimed, and redirected: descriptors and SCSI pass through', async () => {
  const fake = webUsbStick(new MassStorageDevice(new MemoryDisk(new Uint8Array(1 << 20))));
  const dev = await WebUsbDevice.open(fake);
  assert.deepEqual(fake.calls, ['open', 'config 1', 'claim 0']);
  assert.equal(dev.connectInfo.speed, UsbSpeed.HIGH);
  assert.equal(dev.connectInfo.bcdDevice, 0x0126);
  const g = new GuestSide();
  g.host.attach(dev);
  const [ii, ep, dc] = await g.take();
  assert.deepEqual([ii!.header[36], ep!.header[17], ep!.header[2], dc!.type], [8, 2, 2, T.DEVICE_CONNECT]);
  const d = await g.control(0x80, 6, 0x0100, 0, 18);
  assert.deepEqual([d.status, d.data[0], d.data[1]], [UsbStatus.SUCCESS, 18, 1]);
  assert.equal((await g.control(0xc0, 0x33, 0, 0, 4)).status, UsbStatus.STALL);
  assert.deepEqual([...(await g.control(0xa1, 0xfe, 0, 0, 1)).data], [0]);
  // INQUIRY through WebUSB bulk transfers.
  const cbw = new Uint8Array(31);
  const v = new DataView(cbw.buffer);
  v.setUint32(0, 0x43425355, true);
  v.setUint32(4, 77, true);
  v.setUint32(8, 36, true);
  cbw[12] = 0x80;
  cbw[14] = 6;
  cbw.set([0x12, 0, 0, 0, 36, 0], 15);
  assert.equal((await g.bulkOut(0x02, cbw)).length, 31);
  const inq = await g.bulkIn(0x81, 36);
  assert.equal(Buffer.from(inq.data.subarray(8, 13)).toString(), 'Oriel');
  const csw = await g.bulkIn(0x81, 13);
  assert.deepEqual([new DataView(csw.data.buffer, csw.data.byteOffset).getUint32(4, true), csw.data[12]], [77, 0]);
  g.send(T.SET_ALT_SETTING, Uint8Array.of(0, 3));
  assert.deepEqual([...(await g.take()).at(-1)!.header], [UsbStatus.STALL, 0, 0]);
  await g.host.detach();
  assert.deepEqual(fake.calls.slice(-2), ['release 0', 'close']);
});
