// The WebUSB adapter (navigator.usb in the browser, the `usb` package in Node) without USB hardware: a WebUSB-shaped
// device whose transfers the virtual stick answers stands in for a real one, so the whole path — usbredir packets,
// WebUsbDevice's setup/status mapping, WebUSB calls — carries real descriptors and SCSI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MassStorageDevice } from '../../src/spice/usbredir/mass-storage.ts';
import { MemoryDisk } from '../../src/spice/usbredir/memory-disk.ts';
import { UsbSpeed, UsbStatus, UsbredirType as T } from '../../src/spice/usbredir/protocol.ts';
import { WebUsbDevice, webUsbSetup } from '../../src/spice/usbredir/webusb.ts';
import { webUsbStick } from './helpers/webusb-stick.ts';
import { GuestSide } from './helpers/usbredir-guest.ts';

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
