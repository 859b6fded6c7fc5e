// Oriel as the *source* of a QEMU 7.2 postcopy migration (lazy restore): the commands that switch the destination
// to postcopy, the `ram` sections of pages sent after it runs, and the return path it answers on
// (docs/checkpoint-stream.md; QEMU migration/savevm.c `mig_cmd_args`, migration.c `rp_cmd_args`, ram.c
// `ram_load_postcopy`). Sending order (migration.c `postcopy_start`):
//   header+CONFIG | OPEN_RETURN_PATH | POSTCOPY_ADVISE | ram START | RAM_DISCARD (≥ 1: LISTEN right after ADVISE
//   deadlocks 7.2's listen thread) | PACKAGED{ LISTEN, device sections, PING, RUN } | ram PARTs (requested pages
//   first) | ram END | EOF (only after the PING's PONG: device loads fault on RAM that must still be served)
// A page must never be sent twice after LISTEN (UFFDIO_COPY fails with EEXIST and QEMU exits).
import { PAGE_SIZE, RAM, REC, StreamError } from './format.ts';
import type { RamBlock } from './parser.ts';
import { pageRecordHeader, ramStart } from './writer.ts';

/** Commands of the main stream (savevm.c, MIG_CMD_*). */
export const MIG_CMD = {
  OPEN_RETURN_PATH: 1,
  PING: 2,
  POSTCOPY_ADVISE: 3,
  POSTCOPY_LISTEN: 4,
  POSTCOPY_RUN: 5,
  POSTCOPY_RAM_DISCARD: 6,
  PACKAGED: 7,
} as const;

/** Messages of the return path, destination → source (migration.c, MIG_RP_MSG_*). */
export const RP_MSG = { SHUT: 1, PONG: 2, REQ_PAGES_ID: 3, REQ_PAGES: 4, RECV_BITMAP: 5, RESUME_ACK: 6 } as const;

/** 7.2's bound on a PACKAGED command's payload (savevm.c MAX_VM_CMD_PACKAGED_SIZE). */
export const MAX_PACKAGED_BYTES = 1 << 24;

/** `08 be16 cmd be16 len payload`. */
export function command(cmd: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(5);
  h[0] = REC.COMMAND;
  h.writeUInt16BE(cmd, 1);
  h.writeUInt16BE(payload.length, 3);
  return Buffer.concat([h, payload]);
}

/** POSTCOPY_ADVISE: the OR of the blocks' page sizes (4096 without huge pages) and the target page size; both must
 * match the destination's. It discards all of the destination's RAM. */
export function adviseCommand(pageSizeSummary: number): Buffer {
  const p = Buffer.alloc(16);
  p.writeBigUInt64BE(BigInt(pageSizeSummary), 0);
  p.writeBigUInt64BE(BigInt(PAGE_SIZE), 8);
  return command(MIG_CMD.POSTCOPY_ADVISE, p);
}

/** RAM_DISCARD: version 0, the block's counted id, a NUL, then {be64 start, be64 length} byte ranges in the block. */
export function discardCommand(blockId: string, ranges: [start: number, length: number][]): Buffer {
  if (ranges.length === 0) throw new StreamError('a discard needs at least one range', 0, 'postcopy');
  const p = Buffer.alloc(3 + blockId.length + 16 * ranges.length);
  let o = 0;
  p[o++] = 0;
  p[o++] = blockId.length;
  o += p.write(blockId, o, 'latin1');
  p[o++] = 0;
  for (const [start, len] of ranges) {
    o = p.writeBigUInt64BE(BigInt(start), o);
    o = p.writeBigUInt64BE(BigInt(len), o);
  }
  return command(MIG_CMD.POSTCOPY_RAM_DISCARD, p);
}

/** PING: QEMU answers PONG `value` on the return path once it has read it. */
export function pingCommand(value: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(value >>> 0);
  return command(MIG_CMD.PING, p);
}

/** PACKAGED{LISTEN, device sections, [PING], RUN}: the destination loads the devices while its listen thread already
 * takes pages from the main stream (device loads may fault on RAM), then starts the guest. `deviceState` is the stored
 * tail's device part; its EOF byte, if any, is left out (an EOF inside the package would end it before RUN). The
 * PING's PONG says the devices are loaded: until then the main thread may wait on a page, and the stream must not end
 * (7.2's listen thread, at EOF, waits for the main thread's load before it lets unsent pages read as zeros). */
export function packagedCommand(deviceState: Buffer, pingAfterDevices?: number): Buffer {
  const devs = deviceState.length > 0 && deviceState[deviceState.length - 1] === REC.EOF
    ? deviceState.subarray(0, deviceState.length - 1)
    : deviceState;
  const ping = pingAfterDevices === undefined ? [] : [pingCommand(pingAfterDevices)];
  const inner = Buffer.concat([command(MIG_CMD.POSTCOPY_LISTEN), devs, ...ping, command(MIG_CMD.POSTCOPY_RUN)]);
  if (inner.length > MAX_PACKAGED_BYTES) {
    throw new StreamError(`device state of ${inner.length} bytes is larger than QEMU's package limit`, 0, 'postcopy');
  }
  const len = Buffer.alloc(4);
  len.writeUInt32BE(inner.length);
  return Buffer.concat([command(MIG_CMD.PACKAGED, len), inner]);
}

export interface PostcopyParts {
  /** PING value sent after the device state (see packagedCommand). */
  devicesLoadedPing?: number;
  header: Buffer;
  ramSectionId: number;
  blocks: RamBlock[];
  deviceState: Buffer;
  /** A block's page size on the destination when it is not 4 KiB (a huge-page VM's memfd: 2 MiB). Such a block's
   * pages must then be sent a whole host page at a time, in order (7.2 `ram_load_postcopy` places a huge page once
   * all of its target pages have come, and refuses pages of another host page in between). */
  hostPageSize?: (id: string) => number;
}

/** Everything up to and including the package: after it the destination runs the guest and requests pages. */
export function postcopyPreamble(parts: PostcopyParts): Buffer {
  const size = (id: string) => parts.hostPageSize?.(id) ?? PAGE_SIZE;
  const used = parts.blocks.filter((b) => b.length > 0);
  // The discard must be aligned to its block's page size (7.2 `ram_block_discard_range`): a 4 KiB block's first page.
  const first = used.find((b) => size(b.id) === PAGE_SIZE) ?? used[0];
  if (!first) throw new StreamError('no RAM block to restore', 0, 'postcopy');
  // ADVISE carries the OR of the blocks' page sizes (7.2 `ram_pagesize_summary`); it must equal the destination's.
  const summary = parts.blocks.reduce((a, b) => a | size(b.id), PAGE_SIZE);
  return Buffer.concat([
    parts.header,
    command(MIG_CMD.OPEN_RETURN_PATH),
    adviseCommand(summary),
    ramStart(parts.ramSectionId, parts.blocks, parts.hostPageSize),
    // The one discard 7.2 needs before LISTEN; the destination's RAM was all discarded by ADVISE anyway.
    discardCommand(first.id, [[0, size(first.id)]]),
    packagedCommand(parts.deviceState, parts.devicesLoadedPing),
  ]);
}

/** Encodes pages as `ram` PART sections: `02 sid | records | be64 EOS | 7e sid`. Each PART names its first block. */
export class PostcopyPageEncoder {
  private out: Buffer[] = [];
  private bytes = 0;
  private last = -1;
  private open = false;

  constructor(private readonly sid: number, private readonly blocks: RamBlock[]) {}

  page(block: number, index: number, data: Buffer | null): void {
    const b = this.blocks[block];
    if (!b || index < 0 || index >= b.length / PAGE_SIZE) {
      throw new StreamError(`page ${index} of block #${block} is outside the RAM layout`, 0, 'ram');
    }
    if (data && data.length !== PAGE_SIZE) throw new StreamError(`page of ${data.length} bytes`, 0, 'ram');
    if (!this.open) {
      const h = Buffer.alloc(5);
      h[0] = REC.SECTION_PART;
      h.writeUInt32BE(this.sid, 1);
      this.push(h);
      this.open = true;
      this.last = -1;
    }
    this.push(pageRecordHeader(b.id, index, data !== null, block !== this.last));
    if (data) this.push(data);
    this.last = block;
  }

  get pending(): number {
    return this.bytes;
  }

  /** The PART written so far, closed (empty if no page was added). */
  take(): Buffer {
    if (!this.open) return Buffer.alloc(0);
    this.push(sectionTail(this.sid));
    const b = Buffer.concat(this.out, this.bytes);
    this.out = [];
    this.bytes = 0;
    this.open = false;
    return b;
  }

  private push(b: Buffer): void {
    this.out.push(b);
    this.bytes += b.length;
  }
}

function sectionTail(sid: number): Buffer {
  const b = Buffer.alloc(13);
  b.writeBigUInt64BE(BigInt(RAM.EOS), 0);
  b[8] = REC.SECTION_FOOTER;
  b.writeUInt32BE(sid, 9);
  return b;
}

/** `ram` END (nothing in it but EOS) and the stream's EOF: the destination unregisters userfaultfd (pages never sent
 * read as zeros) and completes. */
export function postcopyEnd(sid: number): Buffer {
  const h = Buffer.alloc(5);
  h[0] = REC.SECTION_END;
  h.writeUInt32BE(sid, 1);
  return Buffer.concat([h, sectionTail(sid), Buffer.from([REC.EOF])]);
}

export type ReturnPathMessage =
  | { type: 'shut'; status: number }
  | { type: 'pong'; value: number }
  /** Bytes `offset` .. `offset + length` of `block` (the block named last when the message names none). */
  | { type: 'request'; block: string; offset: number; length: number }
  | { type: 'other'; code: number };

const RP_FIXED: Record<number, number> = { [RP_MSG.SHUT]: 4, [RP_MSG.PONG]: 4, [RP_MSG.REQ_PAGES]: 12 };

/** Splits the return path (`be16 type, be16 len, payload`) into messages, fed socket chunks as they arrive. */
export class ReturnPathParser {
  private buf: Buffer = Buffer.alloc(0);
  private lastBlock: string | undefined;
  private offset = 0;

  push(chunk: Buffer): ReturnPathMessage[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: ReturnPathMessage[] = [];
    while (this.buf.length >= 4) {
      const type = this.buf.readUInt16BE(0);
      const len = this.buf.readUInt16BE(2);
      if (this.buf.length < 4 + len) break;
      const p = this.buf.subarray(4, 4 + len);
      out.push(this.message(type, p));
      this.buf = this.buf.subarray(4 + len);
      this.offset += 4 + len;
    }
    return out;
  }

  private message(type: number, p: Buffer): ReturnPathMessage {
    const bad = (why: string) => new StreamError(`return path message ${type}: ${why}`, this.offset, 'return path');
    const fixed = RP_FIXED[type];
    if (fixed !== undefined && p.length !== fixed) throw bad(`${p.length} bytes, expected ${fixed}`);
    switch (type) {
      case RP_MSG.SHUT:
        return { type: 'shut', status: p.readUInt32BE(0) };
      case RP_MSG.PONG:
        return { type: 'pong', value: p.readUInt32BE(0) };
      case RP_MSG.REQ_PAGES_ID:
      case RP_MSG.REQ_PAGES: {
        if (type === RP_MSG.REQ_PAGES_ID) {
          if (p.length < 13 || p.length !== 13 + p[12]!) throw bad(`${p.length} bytes do not hold a counted block id`);
          this.lastBlock = p.subarray(13).toString('latin1');
        }
        if (this.lastBlock === undefined) throw bad('a page request before any block was named');
        const offset = Number(p.readBigUInt64BE(0));
        const length = p.readUInt32BE(8);
        return { type: 'request', block: this.lastBlock, offset, length };
      }
      default:
        return { type: 'other', code: type };
    }
  }
}
