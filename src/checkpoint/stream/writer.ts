// Reassembles a migration stream QEMU 7.2 accepts with `-incoming`, from the parts the parser split off:
//   header (QEVM, version, CONFIGURATION, as captured)
//   01 sid 03 "ram" be32 0 be32 4 | be64 total|MEM_SIZE {counted id, be64 used_length}* be64 EOS | 7e sid
//   02 sid | page records, one PART per `pagesPerPart` pages | be64 EOS | 7e sid        (as many PARTs as needed)
//   device state (FULL sections ... EOF) [VMDESCRIPTION]
// Every page is sent once (PAGE, or ZERO with fill 0): the destination's RAM then equals the checkpoint's whatever
// it held before (a ROM block whose checkpoint page is zero gets zeroed too). No END section: the loader does not
// need one (background-snapshot streams have none either).
import { PAGE_SHIFT, PAGE_SIZE, RAM, RAM_SECTION, RAM_VERSION, REC, StreamError } from './format.ts';
import type { RamBlock } from './parser.ts';

export interface StreamParts {
  header: Buffer;
  ramSectionId: number;
  blocks: RamBlock[];
  deviceState: Buffer;
  vmdesc?: Buffer;
}

export interface PageRecord {
  block: number;
  index: number;
  /** 4096 bytes, or null for a zero page. */
  data: Buffer | null;
}

const PAGES_PER_PART = 4096;
const FLUSH_BYTES = 1 << 20;

/** Yields the stream in buffers of about 1 MiB. `pages` must give every page to restore, in any order. */
export function* writeStream(
  parts: StreamParts,
  pages: Iterable<PageRecord>,
  pagesPerPart = PAGES_PER_PART,
): Generator<Buffer> {
  const w = new StreamBuilder(parts, pagesPerPart);
  yield* w.start();
  for (const p of pages) {
    const b = w.page(p);
    if (b) yield b;
  }
  yield* w.end();
}

/** writeStream a step at a time, for a sender whose pages arrive asynchronously (restore.ts sendEager). */
export class StreamBuilder {
  private out: Buffer[] = [];
  private outBytes = 0;
  private inPart = 0;
  private last = -1;

  constructor(private readonly parts: StreamParts, private readonly pagesPerPart = PAGES_PER_PART) {}

  /** The header and the RAM layout. */
  start(): Buffer[] {
    return [this.parts.header, ramStart(this.parts.ramSectionId, this.parts.blocks)];
  }

  /** Adds a page; returns about 1 MiB of stream when that much is ready. */
  page(p: PageRecord): Buffer | undefined {
    const block = this.parts.blocks[p.block];
    if (!block || p.index < 0 || p.index >= block.length / PAGE_SIZE) {
      throw new StreamError(`page ${p.index} of block #${p.block} is outside the RAM layout`, 0, RAM_SECTION);
    }
    if (p.data && p.data.length !== PAGE_SIZE) throw new StreamError(`page of ${p.data.length} bytes`, 0, RAM_SECTION);
    if (this.inPart === 0) {
      const h = Buffer.alloc(5);
      h[0] = REC.SECTION_PART;
      h.writeUInt32BE(this.parts.ramSectionId, 1);
      this.push(h);
      this.last = -1; // name the block again in each PART (not required, but keeps each PART self-describing)
    }
    this.push(pageRecordHeader(block.id, p.index, p.data !== null, p.block !== this.last));
    if (p.data) this.push(p.data);
    this.last = p.block;
    if (++this.inPart >= this.pagesPerPart) this.closePart();
    return this.outBytes >= FLUSH_BYTES ? this.take() : undefined;
  }

  /** The rest: the last PART, the device state, the VMDESCRIPTION if any. */
  end(): Buffer[] {
    if (this.inPart > 0) this.closePart();
    const tail = this.outBytes > 0 ? [this.take()] : [];
    tail.push(this.parts.deviceState);
    if (this.parts.vmdesc && this.parts.vmdesc.length > 0) tail.push(this.parts.vmdesc);
    return tail;
  }

  private push(b: Buffer): void {
    this.out.push(b);
    this.outBytes += b.length;
  }

  private take(): Buffer {
    const b = Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    return b;
  }

  private closePart(): void {
    const b = Buffer.alloc(13);
    b.writeBigUInt64BE(BigInt(RAM.EOS), 0);
    b[8] = REC.SECTION_FOOTER;
    b.writeUInt32BE(this.parts.ramSectionId, 9);
    this.push(b);
    this.inPart = 0;
  }
}

/** A `ram` page record's header: be64 offset|flags, the block's counted id unless `named` is false (CONTINUE), and
 * for a zero page its fill byte (0). A data page's 4096 bytes follow it. */
export function pageRecordHeader(blockId: string, index: number, data: boolean, named: boolean): Buffer {
  const h = Buffer.alloc(8 + (named ? 1 + blockId.length : 0) + (data ? 0 : 1));
  const flags = (data ? RAM.PAGE : RAM.ZERO) | (named ? 0 : RAM.CONTINUE);
  h.writeBigUInt64BE((BigInt(index) << BigInt(PAGE_SHIFT)) | BigInt(flags), 0);
  if (named) {
    h[8] = blockId.length;
    h.write(blockId, 9, 'latin1');
  }
  return h; // a ZERO record's fill byte is the last byte, already 0
}

/** `ram` SECTION_START: the RAM layout (block ids and lengths), EOS, footer. `hostPageSize` (postcopy only): a block's
 * page size when it is not 4 KiB (huge pages), written after its length as 7.2's `ram_load_precopy` reads it once
 * postcopy is advised. */
export function ramStart(sid: number, blocks: RamBlock[], hostPageSize?: (id: string) => number): Buffer {
  const total = blocks.reduce((a, b) => a + BigInt(b.length), 0n);
  const huge = (id: string) => (hostPageSize?.(id) ?? PAGE_SIZE) !== PAGE_SIZE;
  const size = 1 + 4 + 1 + 3 + 8 + 8 + blocks.reduce((a, b) => a + 1 + b.id.length + 8 + (huge(b.id) ? 8 : 0), 0) +
    8 + 5;
  const b = Buffer.alloc(size);
  let o = 0;
  b[o++] = REC.SECTION_START;
  o = b.writeUInt32BE(sid, o);
  b[o++] = RAM_SECTION.length;
  o += b.write(RAM_SECTION, o, 'latin1');
  o = b.writeUInt32BE(0, o);
  o = b.writeUInt32BE(RAM_VERSION, o);
  o = b.writeBigUInt64BE(total | BigInt(RAM.MEM_SIZE), o);
  for (const blk of blocks) {
    b[o++] = blk.id.length;
    o += b.write(blk.id, o, 'latin1');
    o = b.writeBigUInt64BE(BigInt(blk.length), o);
    if (huge(blk.id)) o = b.writeBigUInt64BE(BigInt(hostPageSize!(blk.id)), o);
  }
  o = b.writeBigUInt64BE(BigInt(RAM.EOS), o);
  b[o++] = REC.SECTION_FOOTER;
  o = b.writeUInt32BE(sid, o);
  return b;
}
