// The link handshake that opens every channel: spice/protocol.h SpiceLinkHeader, SpiceLinkMess,
// SpiceLinkReply, SpiceLinkAuthMechanism; server side in spice-server server/reds.cpp
// (reds_handle_read_link_done, reds_handle_ticket); client reference spice-gtk spice-channel.c
// (spice_channel_send_link, spice_channel_recv_link_msg, spice_channel_send_spice_ticket).
import { capsFromBits, hasCap } from './caps.ts';
import {
  CommonCap, LINK_MAGIC, LinkErr, MAX_PASSWORD_LENGTH, PROTOCOL_MAJOR, PROTOCOL_MINOR,
  TICKET_PUBKEY_BYTES, nameOf,
} from './proto/constants.ts';
import { SpiceProtocolError } from './proto/errors.ts';
import { Reader } from './proto/reader.ts';
import { Writer } from './proto/writer.ts';
import type { ByteQueue, Transport } from './transport.ts';
import { encodeUtf8 } from './proto/utf8.ts';

/**
 * RSA-OAEP (MGF1 and hash SHA-1, empty label) encryption of the ticket with the server's public
 * key, a DER SubjectPublicKeyInfo (SPICE_TICKET_PUBKEY_BYTES). Injected: WebCrypto in the browser,
 * node:crypto publicEncrypt in Node. Must return RSA_size bytes (128 for the 1024-bit key).
 */
export type TicketEncryptor = (spkiDer: Uint8Array, plaintext: Uint8Array) => Promise<Uint8Array>;

export type LinkErrorReason =
  | keyof typeof LinkErr
  | 'NO_COMPATIBLE_AUTH' // server offers neither SPICE ticket auth nor a mechanism we speak
  | 'PASSWORD_TOO_LONG'; // > SPICE_MAX_PASSWORD_LENGTH, checked before sending (spice-gtk does the same)

/** The server refused the link (reply error or link result), or auth could not be attempted. */
export class SpiceLinkError extends Error {
  override readonly name = 'SpiceLinkError';
  constructor(
    readonly reason: LinkErrorReason,
    readonly channel: string,
    readonly code?: number,
  ) {
    super(`SPICE link of ${channel} failed: ${reason}${code !== undefined ? ` (${code})` : ''}`);
  }
}

export interface LinkParams {
  /** 0 for the main channel, MAIN INIT session_id for the others. */
  connectionId: number;
  channelType: number;
  channelId: number;
  channelCaps: readonly number[]; // bit numbers
  password: string;
  encryptTicket: TicketEncryptor;
  /** For error messages. */
  channelLabel: string;
}

export interface LinkResult {
  commonCaps: number[];
  channelCaps: number[];
}

function linkErrReason(code: number): LinkErrorReason {
  const name = nameOf(LinkErr, code);
  return name in LinkErr ? (name as keyof typeof LinkErr) : 'ERROR';
}

/** SpiceLinkHeader: magic, major, minor, size: 4 × u32. */
export const LINK_HEADER_SIZE = 16;
const HEADER_SIZE = LINK_HEADER_SIZE;
const LINK_MESS_SIZE = 18; // connection_id u32, type u8, id u8, num_common u32, num_channel u32, caps_offset u32
/** The largest link body taken (a reply is 178 bytes + caps): anything larger is not SPICE. */
export const MAX_LINK_BODY = 4096;
const MAX_REPLY_SIZE = MAX_LINK_BODY;
const CLIENT_COMMON_CAPS = [CommonCap.PROTOCOL_AUTH_SELECTION, CommonCap.AUTH_SPICE, CommonCap.MINI_HEADER];

export function encodeLinkMess(
  p: Pick<LinkParams, 'connectionId' | 'channelType' | 'channelId' | 'channelCaps'>,
): Uint8Array {
  const common = capsFromBits(CLIENT_COMMON_CAPS);
  const chan = capsFromBits(p.channelCaps);
  const size = LINK_MESS_SIZE + 4 * (common.length + chan.length);
  const w = new Writer(HEADER_SIZE + size);
  w.u32(LINK_MAGIC).u32(PROTOCOL_MAJOR).u32(PROTOCOL_MINOR).u32(size);
  w.u32(p.connectionId).u8(p.channelType).u8(p.channelId);
  w.u32(common.length).u32(chan.length).u32(LINK_MESS_SIZE);
  for (const c of [...common, ...chan]) w.u32(c);
  return w.finish();
}

/** SpiceLinkMess, what a client sends after the header (the server's side, e.g. a proxy reading the link). */
export interface LinkMess {
  connectionId: number;
  channelType: number;
  channelId: number;
  commonCaps: number[];
  channelCaps: number[];
}

/** Parses SpiceLinkMess {connection_id, channel_type, channel_id, num_common_caps, num_channel_caps, caps_offset}. */
export function decodeLinkMess(bytes: Uint8Array): LinkMess {
  const r = new Reader(bytes, 0, 'SpiceLinkMess');
  const connectionId = r.u32();
  const channelType = r.u8();
  const channelId = r.u8();
  return { connectionId, channelType, channelId, ...readCaps(r, 'SpiceLinkMess caps') };
}

/** {num_common_caps, num_channel_caps, caps_offset} and the caps words they point at (both link messages end so). */
function readCaps(r: Reader, what: string): { commonCaps: number[]; channelCaps: number[] } {
  const nCommon = r.u32();
  const nChannel = r.u32();
  const c = r.at(r.u32(), what);
  c.count(nCommon + nChannel, 4);
  const commonCaps = Array.from({ length: nCommon }, () => c.u32());
  const channelCaps = Array.from({ length: nChannel }, () => c.u32());
  return { commonCaps, channelCaps };
}

export interface LinkReply {
  error: number;
  pubKey: Uint8Array;
  commonCaps: number[];
  channelCaps: number[];
}

/** Checks a SpiceLinkHeader from the server and returns the size of the reply that follows. */
export function decodeLinkHeader(bytes: Uint8Array): number {
  const r = new Reader(bytes, 0, 'SpiceLinkHeader');
  const magic = r.u32();
  if (magic !== LINK_MAGIC) throw new SpiceProtocolError(`link: bad magic 0x${magic.toString(16)}`);
  const major = r.u32();
  r.u32(); // minor: differences within major 2 are negotiated by caps
  const size = r.u32();
  if (major !== PROTOCOL_MAJOR)
    throw new SpiceProtocolError(`link: server protocol major ${major}, want ${PROTOCOL_MAJOR}`);
  if (size < 4 || size > MAX_REPLY_SIZE) throw new SpiceProtocolError(`link: reply size ${size} out of range`);
  return size;
}

/** Parses SpiceLinkReply {error, pub_key[162], num_common_caps, num_channel_caps, caps_offset} + caps. */
export function decodeLinkReply(bytes: Uint8Array): LinkReply {
  const r = new Reader(bytes, 0, 'SpiceLinkReply');
  const error = r.u32();
  if (error !== LinkErr.OK) return { error, pubKey: new Uint8Array(0), commonCaps: [], channelCaps: [] };
  const pubKey = r.bytesView(TICKET_PUBKEY_BYTES).slice();
  return { error, pubKey, ...readCaps(r, 'SpiceLinkReply caps') };
}

/** Runs the handshake on a fresh transport; resolves when the server's link result is OK. */
export async function performLink(transport: Transport, queue: ByteQueue, p: LinkParams): Promise<LinkResult> {
  const pwBytes = encodeUtf8(p.password);
  if (pwBytes.length > MAX_PASSWORD_LENGTH) throw new SpiceLinkError('PASSWORD_TOO_LONG', p.channelLabel);

  transport.write(encodeLinkMess(p));
  const size = decodeLinkHeader(await queue.read(HEADER_SIZE));
  const reply = decodeLinkReply(await queue.read(size));
  if (reply.error !== LinkErr.OK) {
    throw new SpiceLinkError(linkErrReason(reply.error), p.channelLabel, reply.error);
  }
  if (!hasCap(reply.commonCaps, CommonCap.MINI_HEADER)) {
    // Every libspice-server since 0.12 sets it; the 18-byte full header is not implemented.
    throw new SpiceProtocolError('link: server lacks MINI_HEADER');
  }
  if (hasCap(reply.commonCaps, CommonCap.PROTOCOL_AUTH_SELECTION)) {
    if (!hasCap(reply.commonCaps, CommonCap.AUTH_SPICE)) throw new SpiceLinkError('NO_COMPATIBLE_AUTH', p.channelLabel);
    transport.write(new Writer(4).u32(CommonCap.AUTH_SPICE).finish()); // SpiceLinkAuthMechanism
  }
  // The ticket is sent even with disable-ticketing=on: the server decrypts it regardless
  // (reds.cpp reds_handle_ticket). Plaintext is the password plus its NUL terminator.
  const plain = new Uint8Array(pwBytes.length + 1);
  plain.set(pwBytes);
  const ticket = await p.encryptTicket(reply.pubKey, plain);
  transport.write(ticket);
  const result = new Reader(await queue.read(4), 0, 'link result').u32();
  if (result !== LinkErr.OK) {
    throw new SpiceLinkError(linkErrReason(result), p.channelLabel, result);
  }
  return { commonCaps: reply.commonCaps, channelCaps: reply.channelCaps };
}
