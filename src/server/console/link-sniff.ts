// Just enough of the SPICE link handshake for the proxy to know which SPICE session a connection belongs to. The
// layouts, constants and parsers are the SPICE core's (src/spice/link.ts, src/spice/proto): SpiceLinkHeader, then
// SpiceLinkMess from the client and SpiceLinkReply from the server, a u32 link result, then messages with the mini
// header when both sides announced CommonCap.MINI_HEADER, else the full one. MAIN_INIT starts with u32 session_id.
import { hasCap } from '../../spice/caps.ts';
import { LINK_HEADER_SIZE, MAX_LINK_BODY, decodeLinkHeader, decodeLinkMess, decodeLinkReply } from '../../spice/link.ts';
import {
  ChannelType, CommonCap, DATA_HEADER_SIZE, LinkErr, MINI_HEADER_SIZE, MainMsg,
} from '../../spice/proto/constants.ts';
import { Reader } from '../../spice/proto/reader.ts';

export const CHANNEL_MAIN = ChannelType.MAIN;
export const CHANNEL_DISPLAY = ChannelType.DISPLAY;
export const CHANNEL_CURSOR = ChannelType.CURSOR;
/** A link message is tiny; anything larger before the link is done is not SPICE. */
export const MAX_LINK_BYTES = LINK_HEADER_SIZE + MAX_LINK_BODY;

export interface ClientLink {
  connectionId: number;
  channelType: number;
  channelId: number;
  miniHeader: boolean;
  /** Bytes the link message takes (header + body). */
  length: number;
}

/** Parses the client's first bytes; undefined while incomplete; throws on bytes that are not a SPICE link. */
export function parseClientLink(buf: Buffer): ClientLink | undefined {
  if (buf.length < LINK_HEADER_SIZE) return undefined;
  const size = decodeLinkHeader(buf.subarray(0, LINK_HEADER_SIZE)); // throws on a bad magic, version or size
  if (buf.length < LINK_HEADER_SIZE + size) return undefined;
  const mess = decodeLinkMess(buf.subarray(LINK_HEADER_SIZE, LINK_HEADER_SIZE + size));
  return {
    connectionId: mess.connectionId,
    channelType: mess.channelType,
    channelId: mess.channelId,
    miniHeader: hasCap(mess.commonCaps, CommonCap.MINI_HEADER),
    length: LINK_HEADER_SIZE + size,
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
  /** Called once if the session id cannot be read (odd input, or no MAIN_INIT among the first messages). */
  onGiveUp?: () => void;

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
    if (this.stage === 'done' && this.sessionId === undefined) {
      const giveUp = this.onGiveUp;
      this.onGiveUp = undefined;
      giveUp?.();
    }
    return this.sessionId;
  }

  get finished(): boolean {
    return this.stage === 'done';
  }

  private step(): void {
    if (this.stage === 'reply') {
      if (this.buf.length < LINK_HEADER_SIZE) return;
      const size = decodeLinkHeader(this.buf.subarray(0, LINK_HEADER_SIZE));
      if (this.buf.length < LINK_HEADER_SIZE + size) return;
      const reply = decodeLinkReply(this.buf.subarray(LINK_HEADER_SIZE, LINK_HEADER_SIZE + size));
      if (reply.error !== LinkErr.OK) throw new Error('link refused');
      this.mini = this.clientMiniHeader && hasCap(reply.commonCaps, CommonCap.MINI_HEADER);
      this.buf = this.buf.subarray(LINK_HEADER_SIZE + size);
      this.stage = 'result';
    }
    if (this.stage === 'result') {
      if (this.buf.length < 4) return;
      if (this.buf.readUInt32LE(0) !== LinkErr.OK) throw new Error('link failed');
      this.buf = this.buf.subarray(4);
      this.stage = 'messages';
    }
    while (this.stage === 'messages') {
      const hdr = this.mini ? MINI_HEADER_SIZE : DATA_HEADER_SIZE;
      if (this.buf.length < hdr) return;
      const r = new Reader(this.buf.subarray(0, hdr), this.mini ? 0 : 8, 'message header');
      const type = r.u16();
      const size = r.u32();
      if (type === MainMsg.INIT) {
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
