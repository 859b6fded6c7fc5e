// The usbredir protocol (spice-usbredir docs/usb-redirection-protocol.md, usbredirparser/usbredirproto.h), written
// here: packet numbers, capabilities, statuses and the typed bodies. Little-endian, packed. Every packet is a header
// {type u32, length u32 (bytes after the header), id u32, or u64 once both hellos announced 64bits_ids} and a
// type-specific header, followed for control/bulk/iso/interrupt/filter packets by data. Client = usb-host
// (this side owns the device), QEMU = usb-guest.

export const UsbredirType = {
  HELLO: 0,
  DEVICE_CONNECT: 1,
  DEVICE_DISCONNECT: 2,
  RESET: 3,
  INTERFACE_INFO: 4,
  EP_INFO: 5,
  SET_CONFIGURATION: 6,
  GET_CONFIGURATION: 7,
  CONFIGURATION_STATUS: 8,
  SET_ALT_SETTING: 9,
  GET_ALT_SETTING: 10,
  ALT_SETTING_STATUS: 11,
  START_ISO_STREAM: 12,
  STOP_ISO_STREAM: 13,
  ISO_STREAM_STATUS: 14,
  START_INTERRUPT_RECEIVING: 15,
  STOP_INTERRUPT_RECEIVING: 16,
  INTERRUPT_RECEIVING_STATUS: 17,
  ALLOC_BULK_STREAMS: 18,
  FREE_BULK_STREAMS: 19,
  BULK_STREAMS_STATUS: 20,
  CANCEL_DATA_PACKET: 21,
  FILTER_REJECT: 22,
  FILTER_FILTER: 23,
  DEVICE_DISCONNECT_ACK: 24,
  START_BULK_RECEIVING: 25,
  STOP_BULK_RECEIVING: 26,
  BULK_RECEIVING_STATUS: 27,
  CONTROL_PACKET: 100,
  BULK_PACKET: 101,
  ISO_PACKET: 102,
  INTERRUPT_PACKET: 103,
  BUFFERED_BULK_PACKET: 104,
} as const;

export const UsbredirCap = {
  BULK_STREAMS: 0,
  CONNECT_DEVICE_VERSION: 1,
  FILTER: 2,
  DEVICE_DISCONNECT_ACK: 3,
  EP_INFO_MAX_PACKET_SIZE: 4,
  IDS_64BITS: 5,
  BULK_LENGTH_32BITS: 6,
  BULK_RECEIVING: 7,
} as const;

export const UsbStatus = { SUCCESS: 0, CANCELLED: 1, INVAL: 2, IOERROR: 3, STALL: 4, TIMEOUT: 5, BABBLE: 6 } as const;
export const UsbSpeed = { LOW: 0, FULL: 1, HIGH: 2, SUPER: 3, UNKNOWN: 255 } as const;
export const EpType = { CONTROL: 0, ISO: 1, BULK: 2, INTERRUPT: 3, INVALID: 255 } as const;

/** What this client announces: qemu-xhci wants 4, 5 and 6; not 0 (bulk streams) nor 7 (bulk receiving). */
export const HOST_CAPS: readonly number[] = [
  UsbredirCap.CONNECT_DEVICE_VERSION, UsbredirCap.FILTER, UsbredirCap.EP_INFO_MAX_PACKET_SIZE,
  UsbredirCap.IDS_64BITS, UsbredirCap.BULK_LENGTH_32BITS,
];

export const HOST_VERSION = 'oriel usbredir host 1';
/** The largest packet accepted (header length field); usbredir's own bound on bulk transfers is 128 MiB. */
export const MAX_PACKET_LENGTH = 128 * 1024 * 1024 + 64;

/** Endpoint address → usbredir slot: 0-15 OUT, 16-31 IN. */
export const epSlot = (ep: number): number => ((ep & 0x80) >> 3) | (ep & 0x0f);
/** usbredir slot → endpoint address. */
export const slotEp = (slot: number): number => ((slot & 0x10) << 3) | (slot & 0x0f);

/** The capabilities both ends announced, which decide header sizes. */
export interface Negotiated {
  has(cap: number): boolean;
}

export interface DeviceConnect {
  speed: number;
  deviceClass: number;
  deviceSubclass: number;
  deviceProtocol: number;
  vendorId: number;
  productId: number;
  bcdDevice: number;
}

export interface InterfaceInfo {
  number: number;
  class: number;
  subclass: number;
  protocol: number;
}

/** One endpoint slot (index = epSlot(address)). */
export interface EndpointInfo {
  type: number;
  interval: number;
  interface: number;
  maxPacketSize: number;
}

export interface ControlHeader {
  endpoint: number;
  request: number;
  requestType: number;
  status: number;
  value: number;
  index: number;
  length: number;
}

export interface BulkHeader {
  endpoint: number;
  status: number;
  /** length | length_high << 16 */
  length: number;
  streamId: number;
}

/** iso and interrupt packets share this header. */
export interface SmallDataHeader {
  endpoint: number;
  status: number;
  length: number;
}

export interface BufferedBulkHeader {
  streamId: number;
  length: number;
  endpoint: number;
  status: number;
}

/** A packet as parsed: its header fields, its type-specific header (raw bytes) and its data. */
export interface UsbredirPacket {
  type: number;
  id: bigint;
  /** Type-specific header. */
  header: Uint8Array;
  /** What follows the type-specific header (control/bulk/iso/interrupt data, filter text). */
  data: Uint8Array;
}

/** The type-specific header size of each packet type, or undefined for unknown types. */
export function typeHeaderSize(type: number, caps: Negotiated): number | undefined {
  const T = UsbredirType;
  switch (type) {
    case T.HELLO: return 64;
    case T.DEVICE_CONNECT: return caps.has(UsbredirCap.CONNECT_DEVICE_VERSION) ? 10 : 8;
    case T.DEVICE_DISCONNECT: case T.RESET: case T.GET_CONFIGURATION: case T.CANCEL_DATA_PACKET:
    case T.FILTER_REJECT: case T.FILTER_FILTER: case T.DEVICE_DISCONNECT_ACK:
      return 0;
    case T.INTERFACE_INFO: return 132;
    case T.EP_INFO:
      return 96 + (caps.has(UsbredirCap.EP_INFO_MAX_PACKET_SIZE) ? 64 : 0)
        + (caps.has(UsbredirCap.BULK_STREAMS) ? 128 : 0);
    case T.SET_CONFIGURATION: case T.GET_ALT_SETTING: case T.STOP_ISO_STREAM:
    case T.START_INTERRUPT_RECEIVING: case T.STOP_INTERRUPT_RECEIVING:
      return 1;
    case T.CONFIGURATION_STATUS: case T.SET_ALT_SETTING: case T.ISO_STREAM_STATUS: case T.INTERRUPT_RECEIVING_STATUS:
      return 2;
    case T.ALT_SETTING_STATUS: case T.START_ISO_STREAM: return 3;
    case T.ALLOC_BULK_STREAMS: return 8;
    case T.FREE_BULK_STREAMS: return 4;
    case T.BULK_STREAMS_STATUS: return 9;
    case T.START_BULK_RECEIVING: return 10;
    case T.STOP_BULK_RECEIVING: return 5;
    case T.BULK_RECEIVING_STATUS: return 6;
    case T.CONTROL_PACKET: return 10;
    case T.BULK_PACKET: return caps.has(UsbredirCap.BULK_LENGTH_32BITS) ? 10 : 8;
    case T.ISO_PACKET: case T.INTERRUPT_PACKET: return 4;
    case T.BUFFERED_BULK_PACKET: return 10;
    default: return undefined;
  }
}

/** Packet types that may carry data after their type-specific header. */
export const DATA_TYPES: ReadonlySet<number> = new Set([
  UsbredirType.HELLO, UsbredirType.FILTER_FILTER, UsbredirType.CONTROL_PACKET, UsbredirType.BULK_PACKET,
  UsbredirType.ISO_PACKET, UsbredirType.INTERRUPT_PACKET, UsbredirType.BUFFERED_BULK_PACKET,
]);

export function typeName(type: number): string {
  for (const [k, v] of Object.entries(UsbredirType)) if (v === type) return k.toLowerCase();
  return `type ${type}`;
}
