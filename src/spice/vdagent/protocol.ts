// The SPICE agent protocol (spice-protocol spice/vd_agent.h; docs/spice-protocol.md §3.9): messages between the client
// and the agent in the guest (spice-vdagent), carried inside the main channel's AGENT_DATA messages. Each message is
// a VDAgentMessage header {protocol u32 = 1, type u32, opaque u64, size u32} (20 bytes, packed, little-endian)
// followed by `size` bytes of payload.
import { SpiceProtocolError } from '../proto/errors.ts';
import { Reader } from '../proto/reader.ts';
import { Writer } from '../proto/writer.ts';

export const VD_AGENT_PROTOCOL = 1;
export const AGENT_HEADER_SIZE = 20;
/** Largest AGENT_DATA body the server accepts in either direction (VD_AGENT_MAX_DATA_SIZE); more disconnects. */
export const AGENT_MAX_CHUNK = 2048;

export const AgentMsg = {
  MOUSE_STATE: 1, MONITORS_CONFIG: 2, REPLY: 3, CLIPBOARD: 4, DISPLAY_CONFIG: 5, ANNOUNCE_CAPABILITIES: 6,
  CLIPBOARD_GRAB: 7, CLIPBOARD_REQUEST: 8, CLIPBOARD_RELEASE: 9, FILE_XFER_START: 10, FILE_XFER_STATUS: 11,
  FILE_XFER_DATA: 12, CLIENT_DISCONNECTED: 13, MAX_CLIPBOARD: 14, AUDIO_VOLUME_SYNC: 15, GRAPHICS_DEVICE_INFO: 16,
} as const;

/** Capability bit numbers (VD_AGENT_CAP_*), announced in ANNOUNCE_CAPABILITIES as a bit array of u32 words. */
export const AgentCap = {
  MOUSE_STATE: 0, MONITORS_CONFIG: 1, REPLY: 2, CLIPBOARD: 3, DISPLAY_CONFIG: 4, CLIPBOARD_BY_DEMAND: 5,
  CLIPBOARD_SELECTION: 6, SPARSE_MONITORS_CONFIG: 7, GUEST_LINEEND_LF: 8, GUEST_LINEEND_CRLF: 9, MAX_CLIPBOARD: 10,
  AUDIO_VOLUME_SYNC: 11, MONITORS_CONFIG_POSITION: 12, FILE_XFER_DISABLED: 13, FILE_XFER_DETAILED_ERRORS: 14,
  GRAPHICS_DEVICE_INFO: 15, CLIPBOARD_NO_RELEASE_ON_REGRAB: 16, CLIPBOARD_GRAB_SERIAL: 17,
} as const;

/** Clipboard data types (VD_AGENT_CLIPBOARD_*). PNG is the one image type every agent must offer. */
export const ClipboardType = { NONE: 0, UTF8_TEXT: 1, PNG: 2, BMP: 3, TIFF: 4, JPG: 5, FILE_LIST: 6 } as const;

/** Selections (VD_AGENT_CLIPBOARD_SELECTION_*): only with CLIPBOARD_SELECTION on both sides. */
export const Selection = { CLIPBOARD: 0, PRIMARY: 1, SECONDARY: 2 } as const;

export const XferStatus = {
  CAN_SEND_DATA: 0, CANCELLED: 1, ERROR: 2, SUCCESS: 3, NOT_ENOUGH_SPACE: 4, SESSION_LOCKED: 5,
  VDAGENT_NOT_CONNECTED: 6, DISABLED: 7,
} as const;

export const MonitorsFlag = { USE_POS: 1, PHYSICAL_SIZE: 2 } as const;

export interface AgentMessage {
  type: number;
  opaque: bigint;
  data: Uint8Array;
}

export interface AgentHeader {
  protocol: number;
  type: number;
  opaque: bigint;
  size: number;
}

export function readHeader(b: Uint8Array): AgentHeader {
  const r = new Reader(b, 0, 'agent message header');
  return { protocol: r.u32(), type: r.u32(), opaque: r.u64(), size: r.u32() };
}

export function encodeMessage(type: number, payload: Uint8Array, opaque = 0n): Uint8Array {
  return new Writer(AGENT_HEADER_SIZE + payload.length).u32(VD_AGENT_PROTOCOL).u32(type).u64(opaque).u32(payload.length)
    .bytes(payload).finish();
}

// ---- capabilities ----

export function encodeCaps(caps: readonly number[], request: boolean): Uint8Array {
  const words = new Uint32Array(Math.max(1, Math.ceil((Math.max(-1, ...caps) + 1) / 32)));
  for (const c of caps) words[c >>> 5]! |= 1 << (c & 31);
  const w = new Writer(4 + 4 * words.length).u32(request ? 1 : 0);
  for (const x of words) w.u32(x);
  return w.finish();
}

export function decodeCaps(data: Uint8Array): { request: boolean; caps: Set<number> } {
  const r = new Reader(data, 0, 'agent ANNOUNCE_CAPABILITIES');
  const request = r.u32() !== 0;
  const caps = new Set<number>();
  for (let word = 0; r.remaining >= 4; word++) {
    const v = r.u32();
    for (let bit = 0; bit < 32; bit++) if (v & (1 << bit)) caps.add(word * 32 + bit);
  }
  return { request, caps };
}

// ---- monitors ----

export interface MonitorConfig {
  width: number;
  height: number;
  x?: number;
  y?: number;
  /** Bits per pixel; 32 unless said otherwise. */
  depth?: number;
}

/** VDAgentMonitorsConfig: {num u32, flags u32, [{height u32, width u32, depth u32, x i32, y i32}]} (height first). */
export function encodeMonitors(monitors: readonly MonitorConfig[], flags = 0): Uint8Array {
  const w = new Writer(8 + 20 * monitors.length).u32(monitors.length).u32(flags);
  for (const m of monitors) w.u32(m.height).u32(m.width).u32(m.depth ?? 32).i32(m.x ?? 0).i32(m.y ?? 0);
  return w.finish();
}

// ---- clipboard ----
// Every clipboard message starts with {selection u8, reserved u8[3]} when both sides announced CLIPBOARD_SELECTION.
// GRAB_SERIAL is not announced by this client, so grabs carry no serial.

export function clipboardPrefix(withSelection: boolean, selection: number): Writer {
  const w = new Writer(64);
  if (withSelection) w.u8(selection).u8(0).u8(0).u8(0);
  return w;
}

export function readSelection(r: Reader, withSelection: boolean): number {
  if (!withSelection) return Selection.CLIPBOARD;
  const s = r.u8();
  r.bytesView(3);
  return s;
}

// ---- file transfer ----

/** The START message's keyfile (GKeyFile syntax), as spice-gtk writes it. */
export function xferStartKeyfile(name: string, size: number): string {
  // A keyfile value cannot hold a line break; the agent takes the basename itself, but never send a path.
  const safe = name.replace(/[\r\n\0]/g, '_').split(/[\\/]/).pop() || 'file';
  return `[vdagent-file-xfer]\nname=${safe}\nsize=${size}\n`;
}

export interface XferStatusMessage {
  id: number;
  result: number;
  /** NOT_ENOUGH_SPACE: free bytes in the guest's target folder (FILE_XFER_DETAILED_ERRORS). */
  freeSpace?: bigint;
  /** ERROR: {error_type u32 (0 = GLib IO), error_code u32} (FILE_XFER_DETAILED_ERRORS). */
  ioError?: { type: number; code: number };
}

export function decodeXferStatus(data: Uint8Array): XferStatusMessage {
  const r = new Reader(data, 0, 'agent FILE_XFER_STATUS');
  const msg: XferStatusMessage = { id: r.u32(), result: r.u32() };
  if (msg.result === XferStatus.NOT_ENOUGH_SPACE && r.remaining >= 8) msg.freeSpace = r.u64();
  if (msg.result === XferStatus.ERROR && r.remaining >= 8) msg.ioError = { type: r.u32(), code: r.u32() };
  return msg;
}

export function assertProtocol(h: AgentHeader): void {
  if (h.protocol !== VD_AGENT_PROTOCOL) {
    throw new SpiceProtocolError(`agent message: protocol ${h.protocol}, expected ${VD_AGENT_PROTOCOL}`);
  }
}
