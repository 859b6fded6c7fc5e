// Just enough of the SPICE link handshake for the proxy to know which SPICE session a connection belongs to.
// Layouts from spice-protocol's spice/protocol.h (all little-endian):
//   SpiceLinkHeader  { u32 magic "REDQ"; u32 major; u32 minor; u32 size }                       16 bytes
//   SpiceLinkMess    { u32 connection_id; u8 channel_type; u8 channel_id; u32 num_common_caps;
//                      u32 num_channel_caps; u32 caps_offset }  then the caps                     (client -> server)
//   SpiceLinkReply   { u32 error; u8 pub_key[162]; u32 num_common_caps; u32 num_channel_caps;
//                      u32 caps_offset }  then the caps                                          (server -> client)
// After the reply the server sends a u32 link result, then messages with the mini header { u16 type; u32 size }
// when both sides announced SPICE_COMMON_CAP_MINI_HEADER (bit 3), else the full one
// { u64 serial; u16 type; u32 size; u32 sub_list }. MAIN_INIT (type 103) starts with u32 session_id.

export const SPICE_MAGIC = 0x51444552;
export const CHANNEL_MAIN = 1;
const MINI_HEADER_CAP = 1 << 3;
const MSG_MAIN_INIT = 103;
/** A link message is tiny; anything larger before the link is done is not SPICE. */
export const MAX_LINK_BYTES = 4096;

export interface ClientLink {
  connectionId: number;
  channelType: number;
  miniHeader: boolean;
  /** Bytes the link message takes (header + body). */
  length: number;
}

/** Parses the client's first bytes; undefined while incomplete; throws on bytes that are not a SPICE link. */
export function parseClientLink(buf: Buffer): ClientLink | undefined {
  if (buf.length < 16) return undefined;
  if (buf.readUInt32LE(0) !== SPICE_MAGIC) throw new Error('not a SPICE link message');
  const size = buf.readUInt32LE(12);
  if (size < 18 || size > MAX_LINK_BYTES) throw new Error(`SPICE link message of ${size} bytes`);
  if (buf.length < 16 + size) return undefined;
  const body = buf.subarray(16, 16 + size);
  const nCommon = body.readUInt32LE(6);
  const capsOffset = body.readUInt32LE(14);
  const common = nCommon > 0 && capsOffset + 4 <= size ? body.readUInt32LE(capsOffset) : 0;
  return {
    connectionId: body.readUInt32LE(0),
    channelType: body.readUInt8(4),
    miniHeader: (common & MINI_HEADER_CAP) !== 0,
    length: 16 + size,
  };
}

/** Follows the server's side of a main channel until MAIN_INIT gives the session id. Feed it every chunk. */
export class SessionIdSniffer {
  private buf = Buffer.alloc(0);
  private stage: 'reply' | 'result' | 'messages' | 'done' = 'reply';
  private mini = false;
  private messages = 0;
  sessionId: number | undefined;
  /** Called once, when MAIN_INIT has told the session id. */
  onSession?: (id: number) => void;

  constructor(private readonly clientMiniHeader: boolean) {}

  /** Returns the session id once known; gives up (done, undefined) after a few messages or on odd input. */
  feed(chunk: Buffer): number | undefined {
    if (this.stage === 'done') return this.sessionId;
    this.buf = Buffer.concat([this.buf, chunk]);
    try {
      this.step();
    } catch {
      this.stage = 'done';
    }
    if (this.buf.length > 1 << 20) this.stage = 'done';
    return this.sessionId;
  }

  get finished(): boolean {
    return this.stage === 'done';
  }

  private step(): void {
    if (this.stage === 'reply') {
      if (this.buf.length < 16) return;
      const size = this.buf.readUInt32LE(12);
      if (this.buf.length < 16 + size) return;
      const body = this.buf.subarray(16, 16 + size);
      if (body.readUInt32LE(0) !== 0) throw new Error('link refused');
      const nCommon = body.readUInt32LE(166);
      const capsOffset = body.readUInt32LE(174);
      const common = nCommon > 0 ? body.readUInt32LE(capsOffset) : 0;
      this.mini = this.clientMiniHeader && (common & MINI_HEADER_CAP) !== 0;
      this.buf = this.buf.subarray(16 + size);
      this.stage = 'result';
    }
    if (this.stage === 'result') {
      if (this.buf.length < 4) return;
      if (this.buf.readUInt32LE(0) !== 0) throw new Error('link failed');
      this.buf = this.buf.subarray(4);
      this.stage = 'messages';
    }
    while (this.stage === 'messages') {
      const hdr = this.mini ? 6 : 18;
      if (this.buf.length < hdr) return;
      const type = this.mini ? this.buf.readUInt16LE(0) : this.buf.readUInt16LE(8);
      const size = this.mini ? this.buf.readUInt32LE(2) : this.buf.readUInt32LE(10);
      if (type === MSG_MAIN_INIT) {
        if (this.buf.length < hdr + 4) return;
        this.sessionId = this.buf.readUInt32LE(hdr);
        this.stage = 'done';
        this.onSession?.(this.sessionId);
        return;
      }
      if (this.buf.length < hdr + size) return;
      this.buf = this.buf.subarray(hdr + size);
      if (++this.messages > 16) throw new Error('no MAIN_INIT');
    }
  }
}
