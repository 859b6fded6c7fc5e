// The usbredir byte stream, host side: cuts what the guest (QEMU) sends into packets and checks each one the way
// usbredirparser does (its verify_type_header), and frames the packets this side sends. SPICE DATA messages do not
// follow packet boundaries, so bytes are buffered until a whole packet is there. Anything malformed throws
// UsbredirProtocolError: the caller closes that channel only.
import { SpiceProtocolError } from '../proto/errors.ts';
import { readBulk, readControl, readHello, readSmallData } from './codec.ts';
import {
  DATA_TYPES, HOST_CAPS, MAX_PACKET_LENGTH, UsbredirCap, UsbredirType, typeHeaderSize, typeName,
  type Negotiated, type UsbredirPacket,
} from './protocol.ts';

export class UsbredirProtocolError extends SpiceProtocolError {
  override readonly name = 'SpiceProtocolError' as const;
  readonly usbredir = true;
}

/** Packets a host never gets from a guest; they are malformed when they come. */
const GUEST_NEVER_SENDS: ReadonlySet<number> = new Set([
  UsbredirType.DEVICE_CONNECT, UsbredirType.DEVICE_DISCONNECT, UsbredirType.INTERFACE_INFO, UsbredirType.EP_INFO,
  UsbredirType.CONFIGURATION_STATUS, UsbredirType.ALT_SETTING_STATUS, UsbredirType.ISO_STREAM_STATUS,
  UsbredirType.INTERRUPT_RECEIVING_STATUS, UsbredirType.BULK_STREAMS_STATUS, UsbredirType.BULK_RECEIVING_STATUS,
  UsbredirType.BUFFERED_BULK_PACKET,
]);

export interface PeerHello {
  version: string;
  caps: number[];
}

export class UsbredirParser implements Negotiated {
  peer: PeerHello | undefined;
  private readonly _ours: ReadonlySet<number>;
  private _chunks: Uint8Array[] = [];
  private _size = 0;
  /** Unknown packet types skipped (forward compatibility, as usbredirparser does). */
  skipped = 0;

  constructor(ourCaps: readonly number[] = HOST_CAPS) {
    this._ours = new Set(ourCaps);
  }

  /** A capability both ends announced. */
  has(cap: number): boolean {
    return this._ours.has(cap) && (this.peer?.caps.includes(cap) ?? false);
  }

  /** 16 once both hellos announced 64-bit ids; hellos themselves always use 12. */
  get headerSize(): number {
    return this.has(UsbredirCap.IDS_64BITS) ? 16 : 12;
  }

  /** Adds received bytes; returns the whole packets they complete. Throws UsbredirProtocolError when malformed. */
  feed(chunk: Uint8Array): UsbredirPacket[] {
    if (chunk.length) {
      this._chunks.push(chunk);
      this._size += chunk.length;
    }
    const out: UsbredirPacket[] = [];
    for (;;) {
      const hs = this.headerSize;
      if (this._size < hs) return out;
      const head = this._peek(hs);
      const v = new DataView(head.buffer, head.byteOffset, hs);
      const type = v.getUint32(0, true);
      const length = v.getUint32(4, true);
      const id = hs === 16 ? v.getBigUint64(8, true) : BigInt(v.getUint32(8, true));
      if (length > MAX_PACKET_LENGTH) fail(`${typeName(type)} packet of ${length} bytes (at most ${MAX_PACKET_LENGTH})`);
      if (!this.peer && type !== UsbredirType.HELLO) fail(`${typeName(type)} before hello`);
      if (this.peer && type === UsbredirType.HELLO) fail('a second hello');
      if (this._size < hs + length) return out;
      const body = this._take(hs + length).subarray(hs);
      const size = typeHeaderSize(type, this);
      if (size === undefined) {
        this.skipped++;
        continue;
      }
      const packet = this._check(type, id, size, body);
      if (type === UsbredirType.HELLO) this.peer = readHello(packet.header, packet.data);
      out.push(packet);
    }
  }

  private _check(type: number, id: bigint, size: number, body: Uint8Array): UsbredirPacket {
    const name = typeName(type);
    if (body.length < size) fail(`${name}: ${body.length} bytes, its header alone is ${size}`);
    if (!DATA_TYPES.has(type) && body.length !== size) fail(`${name}: ${body.length} bytes, expected ${size}`);
    if (GUEST_NEVER_SENDS.has(type)) fail(`${name}: sent by the guest side, which never sends it`);
    const header = body.subarray(0, size);
    const data = body.subarray(size);
    let endpoint: number | undefined;
    let expected: number | undefined;
    switch (type) {
      case UsbredirType.CONTROL_PACKET: {
        const c = readControl(header);
        endpoint = c.endpoint;
        expected = c.length;
        if ((c.endpoint & 0x7f) !== 0) fail(`control packet on endpoint ${hex(c.endpoint)}`);
        if ((c.endpoint & 0x80) !== (c.requestType & 0x80)) fail('control packet: endpoint and request direction differ');
        break;
      }
      case UsbredirType.BULK_PACKET: {
        const b = readBulk(header, this);
        endpoint = b.endpoint;
        expected = b.length;
        break;
      }
      case UsbredirType.ISO_PACKET:
      case UsbredirType.INTERRUPT_PACKET: {
        const s = readSmallData(header);
        endpoint = s.endpoint;
        expected = s.length;
        break;
      }
      case UsbredirType.HELLO:
        if (data.length % 4 !== 0) fail(`hello: capability words of ${data.length} bytes`);
        break;
    }
    if (endpoint !== undefined) {
      // A guest's IN request carries no data; its OUT request carries exactly `length` bytes.
      if (endpoint & 0x80 && data.length !== 0) fail(`${name} IN ${hex(endpoint)}: carries ${data.length} data bytes`);
      if (!(endpoint & 0x80) && data.length !== expected) {
        fail(`${name} OUT ${hex(endpoint)}: length ${expected} but ${data.length} data bytes`);
      }
    }
    return { type, id, header, data };
  }

  /** Frames one packet to send (hello with a 32-bit id, as usbredirparser does). */
  frame(type: number, id: bigint | number, header: Uint8Array, data: Uint8Array = new Uint8Array(0)): Uint8Array {
    const hs = type === UsbredirType.HELLO ? 12 : this.headerSize;
    const out = new Uint8Array(hs + header.length + data.length);
    const v = new DataView(out.buffer);
    v.setUint32(0, type, true);
    v.setUint32(4, header.length + data.length, true);
    if (hs === 16) v.setBigUint64(8, BigInt(id), true);
    else v.setUint32(8, Number(BigInt.asUintN(32, BigInt(id))), true);
    out.set(header, hs);
    out.set(data, hs + header.length);
    return out;
  }

  private _peek(n: number): Uint8Array {
    const first = this._chunks[0]!;
    if (first.length >= n) return first;
    const joined = this._take(this._size);
    this._chunks = [joined];
    this._size = joined.length;
    return joined;
  }

  private _take(n: number): Uint8Array {
    const first = this._chunks[0]!;
    let out: Uint8Array;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this._chunks.shift();
      else this._chunks[0] = first.subarray(n);
    } else {
      out = new Uint8Array(n);
      let filled = 0;
      while (filled < n) {
        const c = this._chunks[0]!;
        const k = Math.min(n - filled, c.length);
        out.set(c.subarray(0, k), filled);
        filled += k;
        if (k === c.length) this._chunks.shift();
        else this._chunks[0] = c.subarray(k);
      }
    }
    this._size -= n;
    return out;
  }
}

function fail(message: string): never {
  throw new UsbredirProtocolError(`usbredir: ${message}`);
}

const hex = (v: number) => `0x${v.toString(16).padStart(2, '0')}`;
