// The guest (QEMU usb-redir) end of usbredir, for tests without QEMU: frames the packets QEMU would send to the
// host and decodes what the host sends back. Uses 64-bit ids after the hello, as QEMU 7.2 and our host agree.
import { UsbredirHost } from '../../../src/spice/usbredir/host.ts';
import { UsbredirType as T, type UsbredirPacket } from '../../../src/spice/usbredir/protocol.ts';

export const QEMU_CAPS = [0, 1, 2, 4, 5, 6, 7];

export function frame(
  type: number, id: number | bigint, header: Uint8Array, data: Uint8Array = new Uint8Array(0), hs = 16,
): Uint8Array {
  const out = new Uint8Array(hs + header.length + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, type, true);
  v.setUint32(4, header.length + data.length, true);
  if (hs === 16) v.setBigUint64(8, BigInt(id), true);
  else v.setUint32(8, Number(id), true);
  out.set(header, hs);
  out.set(data, hs + header.length);
  return out;
}

export function guestHello(caps = QEMU_CAPS): Uint8Array {
  const h = new Uint8Array(64);
  h.set(new TextEncoder().encode('qemu usb-redir guest 7.2.22'));
  let bits = 0;
  for (const c of caps) bits |= 1 << c;
  const data = new Uint8Array(4);
  new DataView(data.buffer).setUint32(0, bits >>> 0, true);
  return frame(T.HELLO, 0, h, data, 12);
}

export function control(
  requestType: number, request: number, value: number, index: number, length: number,
): Uint8Array {
  const h = new Uint8Array(10);
  const v = new DataView(h.buffer);
  h[0] = requestType & 0x80;
  h[1] = request;
  h[2] = requestType;
  v.setUint16(4, value, true);
  v.setUint16(6, index, true);
  v.setUint16(8, length, true);
  return h;
}

export function bulkHeader(endpoint: number, length: number): Uint8Array {
  const h = new Uint8Array(10);
  const v = new DataView(h.buffer);
  h[0] = endpoint;
  v.setUint16(2, length & 0xffff, true);
  v.setUint16(8, length >>> 16, true);
  return h;
}

/** Splits the host's output (after its hello) into packets; headers of 16 bytes. */
export function decode(chunks: Uint8Array[]): UsbredirPacket[] {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  const out: UsbredirPacket[] = [];
  const v = new DataView(all.buffer);
  for (let p = 0; p < all.length;) {
    const type = v.getUint32(p, true);
    const len = v.getUint32(p + 4, true);
    const hs = type === T.HELLO ? 12 : 16;
    const id = hs === 16 ? v.getBigUint64(p + 8, true) : BigInt(v.getUint32(p + 8, true));
    const body = all.subarray(p + hs, p + hs + len);
    const size = type === T.CONTROL_PACKET || type === T.BULK_PACKET ? 10 : type === T.HELLO ? 64
      : type === T.INTERRUPT_PACKET || type === T.ISO_PACKET ? 4 : len;
    out.push({ type, id, header: body.subarray(0, size), data: body.subarray(size) });
    p += hs + len;
  }
  return out;
}

/** A host with a guest in front of it: `send` feeds packets, `take` returns what the host answered since. */
export class GuestSide {
  readonly sent: Uint8Array[] = [];
  readonly host = new UsbredirHost((b) => this.sent.push(b.slice()));
  private _seen = 0;
  private _id = 1;

  constructor() {
    this.host.receive(guestHello());
    this._seen = 1; // our hello
  }

  send(type: number, header: Uint8Array, data?: Uint8Array, id = this._id++): number {
    this.host.receive(frame(type, id, header, data));
    return id;
  }

  async take(): Promise<UsbredirPacket[]> {
    await this.host.idle();
    const fresh = this.sent.slice(this._seen);
    this._seen = this.sent.length;
    return decode(fresh);
  }

  async control(requestType: number, request: number, value: number, index: number, length: number, data?: Uint8Array) {
    this.send(T.CONTROL_PACKET, control(requestType, request, value, index, length), data);
    const [p] = await this.take();
    const got = new DataView(p!.header.buffer, p!.header.byteOffset).getUint16(8, true);
    return { status: p!.header[3]!, length: got, data: p!.data };
  }

  async bulkOut(endpoint: number, data: Uint8Array) {
    this.send(T.BULK_PACKET, bulkHeader(endpoint, data.length), data);
    const [p] = await this.take();
    return { status: p!.header[1]!, length: new DataView(p!.header.buffer, p!.header.byteOffset).getUint16(2, true) };
  }

  async bulkIn(endpoint: number, length: number) {
    this.send(T.BULK_PACKET, bulkHeader(endpoint, length));
    const [p] = await this.take();
    const v = new DataView(p!.header.buffer, p!.header.byteOffset);
    return { status: p!.header[1]!, length: v.getUint16(2, true) + v.getUint16(8, true) * 65536, data: p!.data };
  }
}
