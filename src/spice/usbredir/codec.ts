// Type-specific headers of usbredir packets: read from and written to bytes (usbredirproto.h, packed LE).
import { Reader } from '../proto/reader.ts';
import { Writer } from '../proto/writer.ts';
import {
  EpType, UsbredirCap, type BufferedBulkHeader, type BulkHeader, type ControlHeader, type DeviceConnect,
  type EndpointInfo, type InterfaceInfo, type Negotiated, type SmallDataHeader,
} from './protocol.ts';

export function readControl(h: Uint8Array): ControlHeader {
  const r = new Reader(h, 0, 'usbredir control header');
  return {
    endpoint: r.u8(), request: r.u8(), requestType: r.u8(), status: r.u8(),
    value: r.u16(), index: r.u16(), length: r.u16(),
  };
}

export function writeControl(c: ControlHeader): Uint8Array {
  return new Writer(10).u8(c.endpoint).u8(c.request).u8(c.requestType).u8(c.status)
    .u16(c.value).u16(c.index).u16(c.length).finish();
}

export function readBulk(h: Uint8Array, caps: Negotiated): BulkHeader {
  const r = new Reader(h, 0, 'usbredir bulk header');
  const endpoint = r.u8();
  const status = r.u8();
  const low = r.u16();
  const streamId = r.u32();
  const high = caps.has(UsbredirCap.BULK_LENGTH_32BITS) ? r.u16() : 0;
  return { endpoint, status, length: low + high * 65536, streamId };
}

export function writeBulk(b: BulkHeader, caps: Negotiated): Uint8Array {
  const w = new Writer(10).u8(b.endpoint).u8(b.status).u16(b.length & 0xffff).u32(b.streamId);
  if (caps.has(UsbredirCap.BULK_LENGTH_32BITS)) w.u16(Math.floor(b.length / 65536) & 0xffff);
  return w.finish();
}

/** iso and interrupt packets. */
export function readSmallData(h: Uint8Array): SmallDataHeader {
  const r = new Reader(h, 0, 'usbredir iso/interrupt header');
  return { endpoint: r.u8(), status: r.u8(), length: r.u16() };
}

export function writeSmallData(s: SmallDataHeader): Uint8Array {
  return new Writer(4).u8(s.endpoint).u8(s.status).u16(s.length).finish();
}

export function readBufferedBulk(h: Uint8Array): BufferedBulkHeader {
  const r = new Reader(h, 0, 'usbredir buffered bulk header');
  return { streamId: r.u32(), length: r.u32(), endpoint: r.u8(), status: r.u8() };
}

export function writeDeviceConnect(d: DeviceConnect, caps: Negotiated): Uint8Array {
  const w = new Writer(10).u8(d.speed).u8(d.deviceClass).u8(d.deviceSubclass).u8(d.deviceProtocol)
    .u16(d.vendorId).u16(d.productId);
  if (caps.has(UsbredirCap.CONNECT_DEVICE_VERSION)) w.u16(d.bcdDevice);
  return w.finish();
}

export function readDeviceConnect(h: Uint8Array, caps: Negotiated): DeviceConnect {
  const r = new Reader(h, 0, 'usbredir device_connect');
  return {
    speed: r.u8(), deviceClass: r.u8(), deviceSubclass: r.u8(), deviceProtocol: r.u8(),
    vendorId: r.u16(), productId: r.u16(),
    bcdDevice: caps.has(UsbredirCap.CONNECT_DEVICE_VERSION) ? r.u16() : 0,
  };
}

export function writeInterfaceInfo(list: readonly InterfaceInfo[]): Uint8Array {
  if (list.length > 32) throw new RangeError(`${list.length} interfaces: usbredir carries at most 32`);
  const out = new Uint8Array(132);
  new DataView(out.buffer).setUint32(0, list.length, true);
  list.forEach((i, n) => {
    out[4 + n] = i.number;
    out[36 + n] = i.class;
    out[68 + n] = i.subclass;
    out[100 + n] = i.protocol;
  });
  return out;
}

export function readInterfaceInfo(h: Uint8Array): InterfaceInfo[] {
  const r = new Reader(h, 0, 'usbredir interface_info');
  const count = Math.min(r.u32(), 32);
  return Array.from({ length: count }, (_, n) => ({
    number: h[4 + n]!, class: h[36 + n]!, subclass: h[68 + n]!, protocol: h[100 + n]!,
  }));
}

/** 32 slots (index = epSlot(address)); slots left out are EpType.INVALID. */
export function writeEpInfo(slots: readonly (EndpointInfo | undefined)[], caps: Negotiated): Uint8Array {
  const w = new Writer(160);
  const at = (i: number) => slots[i];
  for (let i = 0; i < 32; i++) w.u8(at(i)?.type ?? EpType.INVALID);
  for (let i = 0; i < 32; i++) w.u8(at(i)?.interval ?? 0);
  for (let i = 0; i < 32; i++) w.u8(at(i)?.interface ?? 0);
  if (caps.has(UsbredirCap.EP_INFO_MAX_PACKET_SIZE)) for (let i = 0; i < 32; i++) w.u16(at(i)?.maxPacketSize ?? 0);
  if (caps.has(UsbredirCap.BULK_STREAMS)) for (let i = 0; i < 32; i++) w.u32(0);
  return w.finish();
}

export function readEpInfo(h: Uint8Array, caps: Negotiated): EndpointInfo[] {
  const r = new Reader(h, 0, 'usbredir ep_info');
  const type = Array.from(r.bytesView(32));
  const interval = Array.from(r.bytesView(32));
  const iface = Array.from(r.bytesView(32));
  const mps = caps.has(UsbredirCap.EP_INFO_MAX_PACKET_SIZE) ? Array.from({ length: 32 }, () => r.u16()) : [];
  return type.map((t, i) => ({ type: t, interval: interval[i]!, interface: iface[i]!, maxPacketSize: mps[i] ?? 0 }));
}

export function readHello(h: Uint8Array, data: Uint8Array): { version: string; caps: number[] } {
  const end = h.indexOf(0);
  const version = String.fromCharCode(...h.subarray(0, end < 0 ? 64 : end)).replace(/[^\x20-\x7e]/g, '?');
  const words = new Reader(data, 0, 'usbredir hello caps');
  const caps: number[] = [];
  for (let w = 0; w < Math.floor(data.length / 4); w++) {
    const bits = words.u32();
    for (let b = 0; b < 32; b++) if (bits & (1 << b)) caps.push(w * 32 + b);
  }
  return { version, caps };
}

export function writeHello(version: string, caps: readonly number[]): Uint8Array {
  const words = Math.max(1, Math.ceil((Math.max(...caps, 0) + 1) / 32));
  const out = new Uint8Array(64 + 4 * words);
  for (let i = 0; i < Math.min(63, version.length); i++) out[i] = version.charCodeAt(i) & 0x7f;
  const v = new DataView(out.buffer);
  for (const c of caps) {
    const at = 64 + 4 * (c >> 5);
    v.setUint32(at, (v.getUint32(at, true) | (1 << (c & 31))) >>> 0, true);
  }
  return out;
}

/** Bytes of {u8 fields…}: status replies and the small requests. */
export const bytes = (...v: number[]): Uint8Array => Uint8Array.from(v);
