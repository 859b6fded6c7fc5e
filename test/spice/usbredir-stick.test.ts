// The virtual USB stick behind the usbredir host, driven by synthetic guest packets (what QEMU's usb-redir sends
// for a Linux guest): plug-in packets, descriptors, configuration, and the bulk-only transport carrying SCSI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MassStorageDevice } from '../../src/spice/usbredir/mass-storage.ts';
import { MemoryDisk } from '../../src/spice/usbredir/memory-disk.ts';
import { UsbStatus, UsbredirType as T } from '../../src/spice/usbredir/protocol.ts';
import { UsbDeviceRefused } from '../../src/spice/usbredir/host.ts';
import { GuestSide, bulkHeader, frame } from './helpers/usbredir-guest.ts';

const MiB = 1 << 20;

function cbw(tag: number, length: number, dirIn: boolean, cdb: number[]): Uint8Array {
  const b = new Uint8Array(31);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0x43425355, true);
  v.setUint32(4, tag, true);
  v.setUint32(8, length, true);
  b[12] = dirIn ? 0x80 : 0;
  b[14] = cdb.length;
  b.set(cdb, 15);
  return b;
}

const be32 = (x: number) => [x >>> 24, (x >>> 16) & 0xff, (x >>> 8) & 0xff, x & 0xff];
const rw10 = (op: number, lba: number, blocks: number) => [op, 0, ...be32(lba), 0, blocks >> 8, blocks & 0xff, 0];

function plugged(bytes = new Uint8Array(MiB), readOnly = false) {
  const g = new GuestSide();
  const disk = new MemoryDisk(bytes, readOnly);
  const dev = new MassStorageDevice(disk);
  g.host.attach(dev);
  return { g, dev, disk };
}

interface Csw { tag: number; residue: number; status: number }

/** One SCSI command through the BOT: CBW, data phase (IN: one request of `length`), CSW. */
async function scsi(g: GuestSide, tag: number, cdb: number[], length: number, out?: Uint8Array) {
  const dirIn = !out && length > 0;
  assert.equal((await g.bulkOut(0x02, cbw(tag, length, dirIn, cdb))).status, UsbStatus.SUCCESS);
  let data = new Uint8Array(0);
  if (dirIn) data = (await g.bulkIn(0x81, length)).data.slice();
  if (out) assert.equal((await g.bulkOut(0x02, out)).status, UsbStatus.SUCCESS);
  const c = await g.bulkIn(0x81, 13);
  const v = new DataView(c.data.buffer, c.data.byteOffset);
  assert.equal(c.data.length, 13);
  assert.equal(v.getUint32(0, true), 0x53425355, 'CSW signature');
  const csw: Csw = { tag: v.getUint32(4, true), residue: v.getUint32(8, true), status: c.data[12]! };
  assert.equal(csw.tag, tag);
  return { data, csw };
}

test('plugging in sends interface_info, ep_info (bulk 0x81/0x02, 512) and device_connect (high speed)', async () => {
  const { g } = plugged();
  const [ii, ep, dc] = await g.take();
  assert.deepEqual([ii!.type, ep!.type, dc!.type], [T.INTERFACE_INFO, T.EP_INFO, T.DEVICE_CONNECT]);
  assert.deepEqual([...ii!.header.subarray(0, 5)], [1, 0, 0, 0, 0]);
  assert.deepEqual([ii!.header[36], ii!.header[68], ii!.header[100]], [8, 6, 0x50]);
  assert.equal(ep!.header.length, 160);
  assert.deepEqual([ep!.header[0], ep!.header[16], ep!.header[2], ep!.header[17], ep!.header[1]], [0, 0, 2, 2, 255]);
  const mps = new DataView(ep!.header.buffer, ep!.header.byteOffset + 96);
  assert.deepEqual([mps.getUint16(2 * 2, true), mps.getUint16(17 * 2, true)], [512, 512]);
  assert.deepEqual([...dc!.header], [2, 0, 0, 0, 0x09, 0x12, 0x01, 0x00, 0x00, 0x01]);
});

test('descriptors, configuration and class requests', async () => {
  const { g } = plugged();
  await g.take();
  const dev = await g.control(0x80, 6, 0x0100, 0, 64);
  assert.equal(dev.status, UsbStatus.SUCCESS);
  assert.deepEqual([...dev.data.subarray(0, 4)], [18, 1, 0x00, 0x02]);
  assert.equal(dev.length, 18);
  const cfg9 = await g.control(0x80, 6, 0x0200, 0, 9);
  assert.deepEqual([cfg9.data.length, cfg9.data[2]], [9, 32]);
  const cfg = await g.control(0x80, 6, 0x0200, 0, 255);
  assert.deepEqual([...cfg.data.subarray(9 + 5, 9 + 8)], [0x08, 0x06, 0x50]);
  assert.deepEqual([cfg.data[18 + 2], cfg.data[25 + 2]], [0x81, 0x02]);
  assert.deepEqual([...(await g.control(0x80, 6, 0x0300, 0, 255)).data], [4, 3, 0x09, 0x04]);
  const product = (await g.control(0x80, 6, 0x0302, 0x409, 255)).data;
  assert.equal(Buffer.from(product.subarray(2)).toString('utf16le'), 'Virtual USB stick');
  assert.equal((await g.control(0x80, 6, 0x0f00, 0, 5)).status, UsbStatus.STALL, 'no BOS (bcdUSB 2.00)');
  assert.deepEqual([...(await g.control(0xa1, 0xfe, 0, 0, 1)).data], [0], 'GET_MAX_LUN: one LUN');
  assert.equal((await g.control(0x21, 0xff, 0, 0, 0)).status, UsbStatus.SUCCESS, 'BOT reset');
  assert.equal((await g.control(0x02, 1, 0, 0x81, 0)).status, UsbStatus.SUCCESS, 'CLEAR_FEATURE halt');
  assert.equal((await g.control(0xc0, 0x33, 0, 0, 4)).status, UsbStatus.STALL, 'unknown vendor request');
  g.send(T.SET_CONFIGURATION, Uint8Array.of(1), undefined, 99);
  const [ii, ep, st] = await g.take();
  assert.deepEqual([ii!.type, ep!.type, st!.type, st!.id], [T.INTERFACE_INFO, T.EP_INFO, T.CONFIGURATION_STATUS, 99n]);
  assert.deepEqual([...st!.header], [UsbStatus.SUCCESS, 1]);
  g.send(T.GET_ALT_SETTING, Uint8Array.of(0));
  assert.deepEqual([...(await g.take())[0]!.header], [UsbStatus.SUCCESS, 0, 0]);
  g.send(T.START_INTERRUPT_RECEIVING, Uint8Array.of(0x83));
  assert.deepEqual([...(await g.take())[0]!.header], [UsbStatus.STALL, 0x83], 'no interrupt endpoints');
});

test('INQUIRY, TEST UNIT READY, READ CAPACITY(10)/(16), MODE SENSE(6)/(10), REPORT LUNS', async () => {
  const { g } = plugged(new Uint8Array(3 * MiB));
  await g.take();
  const inq = await scsi(g, 1, [0x12, 0, 0, 0, 36, 0], 36);
  assert.deepEqual([inq.data[0], inq.data[1], inq.data[4], inq.csw.status, inq.csw.residue], [0, 0x80, 31, 0, 0]);
  assert.equal(Buffer.from(inq.data.subarray(8, 16)).toString().trim(), 'Oriel');
  assert.equal(Buffer.from(inq.data.subarray(16, 32)).toString().trim(), 'Virtual USB stic');
  assert.equal((await scsi(g, 2, [0, 0, 0, 0, 0, 0], 0)).csw.status, 0);
  const cap = await scsi(g, 3, [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8);
  assert.deepEqual([...cap.data], [...be32(3 * 2048 - 1), ...be32(512)]);
  const cap16 = await scsi(g, 4, [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0], 32);
  assert.equal(Number(new DataView(cap16.data.buffer).getBigUint64(0, false)), 3 * 2048 - 1);
  const ms = await scsi(g, 5, [0x1a, 0, 0x3f, 0, 192, 0], 192);
  assert.deepEqual([...ms.data], [3, 0, 0, 0], 'not write-protected');
  assert.equal(ms.csw.residue, 188, 'residue = asked - sent');
  const ms10 = await scsi(g, 6, [0x5a, 0, 0x3f, 0, 0, 0, 0, 0, 8, 0], 8);
  assert.deepEqual([...ms10.data], [0, 6, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...(await scsi(g, 7, [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0], 16)).data.subarray(0, 4)], be32(8));
  for (const [tag, op] of [[8, 0x1e], [9, 0x1b], [10, 0x35]] as const) {
    assert.equal((await scsi(g, tag, [op, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0)).csw.status, 0);
  }
});

test('WRITE(10) then READ(10) round-trip the medium, READ served in pieces', async () => {
  const bytes = new Uint8Array(2 * MiB);
  const { g } = plugged(bytes);
  await g.take();
  const payload = randomBytes(240 * 512);
  const w = await scsi(g, 1, rw10(0x2a, 100, 240), payload.length, payload);
  assert.deepEqual([w.csw.status, w.csw.residue], [0, 0]);
  assert.ok(Buffer.from(bytes.subarray(100 * 512, 340 * 512)).equals(payload), 'written where asked');
  // The guest reads in two requests: 64 KiB, then the rest.
  assert.equal((await g.bulkOut(0x02, cbw(2, payload.length, true, rw10(0x28, 100, 240)))).status, 0);
  const a = await g.bulkIn(0x81, 65536);
  const b = await g.bulkIn(0x81, payload.length);
  assert.equal(a.data.length + b.data.length, payload.length);
  assert.ok(Buffer.concat([a.data, b.data]).equals(payload));
  const c = await g.bulkIn(0x81, 13);
  assert.deepEqual([c.data[12], new DataView(c.data.buffer, c.data.byteOffset).getUint32(8, true)], [0, 0]);
});

test('errors: unknown opcode, out-of-range LBA, write on a read-only stick; REQUEST SENSE tells why', async () => {
  const { g, disk } = plugged(new Uint8Array(MiB), true);
  await g.take();
  const sense = async (tag: number) => {
    const s = await scsi(g, tag, [0x03, 0, 0, 0, 18, 0], 18);
    return [s.data[0], s.data[2], s.data[12], s.data[13]];
  };
  const ms = await scsi(g, 1, [0x1a, 0, 0x3f, 0, 192, 0], 192);
  assert.equal(ms.data[2], 0x80, 'MODE SENSE: write-protect bit');
  const bad = await scsi(g, 2, [0xee, 0, 0, 0, 0, 0], 0);
  assert.equal(bad.csw.status, 1);
  assert.deepEqual(await sense(3), [0x70, 0x05, 0x20, 0]);
  assert.deepEqual(await sense(4), [0x70, 0, 0, 0], 'sense is cleared once read');
  const far = await scsi(g, 5, rw10(0x28, 2048, 1), 512);
  assert.deepEqual([far.csw.status, far.csw.residue, far.data.length], [1, 512, 0]);
  assert.deepEqual(await sense(6), [0x70, 0x05, 0x21, 0]);
  const before = Buffer.from(disk.bytes);
  const wr = await scsi(g, 7, rw10(0x2a, 0, 2), 1024, new Uint8Array(1024).fill(0xaa));
  assert.deepEqual([wr.csw.status, wr.csw.residue], [1, 1024]);
  assert.deepEqual(await sense(8), [0x70, 0x07, 0x27, 0]);
  assert.ok(before.equals(disk.bytes), 'the read-only medium is unchanged');
  // A CBW that is not one is stalled; the guest's reset recovery brings the stick back.
  assert.equal((await g.bulkOut(0x02, new Uint8Array(31))).status, UsbStatus.STALL);
  assert.equal((await g.control(0x21, 0xff, 0, 0, 0)).status, UsbStatus.SUCCESS);
  assert.equal((await scsi(g, 9, [0, 0, 0, 0, 0, 0], 0)).csw.status, 0);
});

test('a cancelled packet still queued is answered as cancelled; detach sends device_disconnect', async () => {
  const { g } = plugged();
  await g.take();
  // Two packets arrive together: the second is cancelled while the first is being answered.
  const one = frame(T.BULK_PACKET, 50, bulkHeader(0x02, 31), cbw(1, 0, false, [0, 0, 0, 0, 0, 0]));
  const two = frame(T.BULK_PACKET, 51, bulkHeader(0x81, 13));
  g.host.receive(Uint8Array.from([...one, ...two]));
  g.send(T.CANCEL_DATA_PACKET, new Uint8Array(0), undefined, 51);
  const got = await g.take();
  const cancelled = got.find((p) => p.id === 51n)!;
  assert.equal(cancelled.header[1], UsbStatus.CANCELLED);
  await g.host.detach();
  const [d] = await g.take();
  assert.equal(d!.type, T.DEVICE_DISCONNECT);
  assert.equal(g.host.device, undefined);
  // Packets for the gone device get IOERROR, not a crash.
  assert.equal((await g.control(0x80, 6, 0x100, 0, 18)).status, UsbStatus.IOERROR);
});

test("a device the VM's filter refuses is not plugged in", async () => {
  const g = new GuestSide();
  const rules = new TextEncoder().encode('0x08,-1,-1,-1,0|-1,-1,-1,-1,1\0');
  g.send(T.FILTER_FILTER, new Uint8Array(0), rules);
  assert.throws(() => g.host.attach(new MassStorageDevice(new MemoryDisk(new Uint8Array(MiB)))), UsbDeviceRefused);
  assert.equal(g.host.device, undefined);
});
