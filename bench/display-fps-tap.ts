// What bench/display-fps.ts counts of a SPICE client's display, from the relay's view (test/spice/helpers/relay.ts
// `tap`), the same for every client: the server → client messages of each display channel connection, framed as
// the protocol frames them (the link reply, the 4-byte link result, then mini headers {u16 type; u32 size} when both
// sides announced MINI_HEADER, full headers {u64 serial; u16 type; u32 size; u32 sub_list} otherwise), each with
// the time its last byte passed the relay. Drawing messages are the ones that change pixels: COPY_BITS, the DRAW_*
// commands and video stream frames.
import { CommonCap, DisplayMsg, MINI_HEADER_SIZE } from '../src/spice/proto/constants.ts';
import type { RelayTap } from '../test/spice/helpers/relay.ts';

const DRAWING = new Set<number>([
  DisplayMsg.COPY_BITS, DisplayMsg.STREAM_DATA, DisplayMsg.STREAM_DATA_SIZED, DisplayMsg.DRAW_FILL,
  DisplayMsg.DRAW_OPAQUE, DisplayMsg.DRAW_COPY, DisplayMsg.DRAW_BLEND, DisplayMsg.DRAW_BLACKNESS,
  DisplayMsg.DRAW_WHITENESS, DisplayMsg.DRAW_INVERS, DisplayMsg.DRAW_ROP3, DisplayMsg.DRAW_STROKE,
  DisplayMsg.DRAW_TEXT, DisplayMsg.DRAW_TRANSPARENT, DisplayMsg.DRAW_ALPHA_BLEND, DisplayMsg.DRAW_COMPOSITE,
]);
const FULL_HEADER_SIZE = 18;
const LINK_HEADER_SIZE = 16;
/** SpiceLinkMess: connection_id u32, channel_type u8, channel_id u8, then num_common_caps at 6. */
const LINK_MESS_CAPS_AT = 6;
/** SpiceLinkReply: error u32, pub_key 162 bytes, then num_common_caps at 166. */
const LINK_REPLY_CAPS_AT = 166;
const DISPLAY = 2;

/** One drawing message: when it had arrived (ms, performance.now()), its size with header, the surface it draws on
 * (0: the screen; Xorg's qxl driver also draws into off-screen surfaces, its pixmaps; -1: a video stream frame). */
export interface Drawn { at: number; bytes: number; surface: number; box?: [number, number, number, number] }
const STREAM_FRAMES = new Set<number>([DisplayMsg.STREAM_DATA, DisplayMsg.STREAM_DATA_SIZED]);

/** Display-channel drawing messages and bytes of every connection through a relay. */
export class DisplayTap {
  readonly drawn: Drawn[] = [];
  /** Display channel bytes server → client (headers and link included), with the time of each chunk. */
  readonly chunks: { at: number; bytes: number }[] = [];
  /** Messages of each type (all display messages), for the log. */
  readonly types = new Map<number, number>();

  /** For SpiceRelay's `tap` option. */
  readonly connection = (): RelayTap => new Connection(this);

  reset(): void {
    this.drawn.length = 0;
    this.chunks.length = 0;
    this.types.clear();
  }

  /** When the last drawing message on the screen arrived (0 if none). */
  get lastDrawnAt(): number {
    return this.onScreen().at(-1)?.at ?? 0;
  }

  /** Drawing messages on the screen (surface 0) and video stream frames. */
  onScreen(): Drawn[] {
    return this.drawn.filter((m) => m.surface <= 0);
  }
}

/** Common caps word 0 of a link message or reply (`at` = offset of num_common_caps in its body). */
function miniHeader(body: Buffer, at: number): boolean {
  const num = body.readUInt32LE(at);
  const offset = body.readUInt32LE(at + 8);
  return num > 0 && body.length >= offset + 4 && ((body.readUInt32LE(offset) >> CommonCap.MINI_HEADER) & 1) === 1;
}

class Connection implements RelayTap {
  private upBuf: Buffer = Buffer.alloc(0);
  private channel = -1;
  private clientMini = false;
  private downBuf: Buffer = Buffer.alloc(0);
  private stage: 'reply' | 'result' | 'messages' = 'reply';
  private mini = false;

  constructor(private readonly tap: DisplayTap) {}

  up(d: Buffer): void {
    if (this.channel >= 0) return;
    this.upBuf = Buffer.concat([this.upBuf, d]);
    if (this.upBuf.length < LINK_HEADER_SIZE) return;
    const size = this.upBuf.readUInt32LE(12);
    if (this.upBuf.length < LINK_HEADER_SIZE + size) return;
    const body = this.upBuf.subarray(LINK_HEADER_SIZE, LINK_HEADER_SIZE + size);
    this.channel = body[4]!;
    this.clientMini = miniHeader(body, LINK_MESS_CAPS_AT);
    this.upBuf = Buffer.alloc(0);
  }

  down(d: Buffer): void {
    if (this.channel !== DISPLAY) return;
    const now = performance.now();
    this.tap.chunks.push({ at: now, bytes: d.length });
    this.downBuf = this.downBuf.length ? Buffer.concat([this.downBuf, d]) : d;
    for (;;) {
      const b = this.downBuf;
      let used = 0;
      if (this.stage === 'reply') {
        if (b.length < LINK_HEADER_SIZE) break;
        const size = b.readUInt32LE(12);
        if (b.length < LINK_HEADER_SIZE + size) break;
        this.mini = this.clientMini && miniHeader(b.subarray(LINK_HEADER_SIZE, LINK_HEADER_SIZE + size),
          LINK_REPLY_CAPS_AT);
        used = LINK_HEADER_SIZE + size;
        this.stage = 'result';
      } else if (this.stage === 'result') {
        if (b.length < 4) break;
        used = 4;
        this.stage = 'messages';
      } else {
        const head = this.mini ? MINI_HEADER_SIZE : FULL_HEADER_SIZE;
        if (b.length < head) break;
        const type = b.readUInt16LE(this.mini ? 0 : 8);
        const size = b.readUInt32LE(this.mini ? 2 : 10);
        if (b.length < head + size) break;
        used = head + size;
        this.tap.types.set(type, (this.tap.types.get(type) ?? 0) + 1);
        if (DRAWING.has(type)) {
          const surface = STREAM_FRAMES.has(type) ? -1 : b.readUInt32LE(head); // SpiceMsgDisplayBase.surface_id
          // SpiceMsgDisplayBase.box {top, left, bottom, right}
          const box = surface < 0 ? undefined : [0, 4, 8, 12].map((o) => b.readInt32LE(head + 4 + o)) as Drawn['box'];
          this.tap.drawn.push({ at: now, bytes: used, surface, box });
        }
      }
      this.downBuf = b.subarray(used);
    }
  }
}

/** Frames a 60 Hz display could show: the 1/60 s slots from `from` to `to` in which at least one message arrived. */
export function frames(drawn: Drawn[], from: number, to: number): number {
  const slots = new Set<number>();
  for (const m of drawn) if (m.at >= from && m.at <= to) slots.add(Math.floor(((m.at - from) * 60) / 1000));
  return slots.size;
}
