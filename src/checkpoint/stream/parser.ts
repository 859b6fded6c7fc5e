// A streaming parser of QEMU 7.2's migration stream, fed chunk by chunk as the stream arrives on a socket (nothing
// is buffered but the record being read). It splits the stream into:
//   - the header: "QEVM", version 3, the CONFIGURATION record (machine type, its known subsections), kept as bytes;
//   - the RAM: the `ram` section's block list (START) and every page record of START/PART/END (a block index, a page
//     index, and 4096 bytes or "zero"), handed to the sink as they come; a page seen twice (precopy re-sends dirty
//     pages) is simply reported twice, the later one wins;
//   - the tail: from the first section that is not `ram` to the end (device state, EOF, the JSON VMDESCRIPTION),
//     opaque bytes; split at the end into device state (up to and including EOF) and the vmdesc record.
// With default capabilities only `ram` is iterable on x86, so device sections never interleave with RAM ones
// (precopy: START, PART*, END, FULL*; background-snapshot: START, PART*, FULL*).
// Anything else (COMMAND records from postcopy/COLO, XBZRLE or compressed pages, RDMA hooks, multifd flushes,
// unknown configuration subsections, a `ram` version other than 4, a missing footer) is refused with a
// StreamError naming the section and the byte offset.
import {
  CONFIG_SUBSECTIONS, PAGE_SHIFT, PAGE_SIZE, QEVM_MAGIC, QEVM_VERSION, RAM, RAM_SECTION, RAM_VERSION, REC, RECORD_NAMES,
  StreamError, ramFlagNames,
} from './format.ts';

export interface RamBlock {
  id: string;
  /** `used_length` in bytes (a multiple of 4096). */
  length: number;
}

export interface StreamSink {
  /** The RAM block list of the `ram` START section (called once, before any page). */
  blocks?(blocks: RamBlock[], ramSectionId: number): void;
  /** One page record: `data` is 4096 bytes (a view into the received chunk: copy it to keep it), or null for a
   * zero page. */
  page(block: number, index: number, data: Buffer | null): void;
  /** If given, called instead of `page` for the data pages read straight out of a received chunk: the page is the
   * 4096 bytes of `chunk` at `offset` (valid during the call only). Saves a Buffer view per page. */
  pageAt?(block: number, index: number, chunk: Buffer, offset: number): void;
}

export interface ParsedStream {
  /** "QEVM", version and CONFIGURATION record, byte for byte. */
  header: Buffer;
  machine: string;
  ramSectionId: number;
  blocks: RamBlock[];
  /** Device sections and EOF (0x00), byte for byte. */
  deviceState: Buffer;
  /** The VMDESCRIPTION record (0x06, be32 length, JSON), or an empty buffer if the stream had none. */
  vmdesc: Buffer;
  stats: { bytes: number; pageRecords: number; zeroRecords: number; ramSections: number; sawEnd: boolean };
}

/** What the parsing generator asks the feeder for: that many bytes, or TAIL (the rest of the stream, opaque), or
 * RAM_RECORDS (the next `ram` record: the feeder reads the plain page records it finds whole in the chunk at hand
 * itself, in `fastPages`, and hands the generator the first record it does not: it is read there the slow way). */
const TAIL = -1;
const RAM_RECORDS = -2;
const NOTHING = Buffer.alloc(0);
const TWO32 = 2 ** 32;
type Reader = Generator<number, void, Buffer>;

export class MigrationStreamParser {
  private readonly chunks: Buffer[] = [];
  private available = 0;
  /** Bytes handed to the parsing generator so far. */
  private consumed = 0;
  private need: number;
  private readonly gen: Reader;
  private readonly tail: Buffer[] = [];
  private tailBytes = 0;
  private inTail = false;
  private finished = false;
  private failed?: Error;

  // Filled while parsing.
  private header?: Buffer;
  private machine = '';
  private ramSid = -1;
  private blocks: RamBlock[] = [];
  private section = 'header';
  private recordAt = 0;
  private lastBlock = -1;
  private readonly stats = { bytes: 0, pageRecords: 0, zeroRecords: 0, ramSections: 0, sawEnd: false };

  constructor(private readonly sink: StreamSink) {
    this.gen = this.parse();
    const first = this.gen.next();
    this.need = first.value as number;
  }

  /** Feeds the next bytes of the stream. Throws StreamError at the first thing it cannot accept. */
  push(chunk: Buffer): void {
    if (this.failed) throw this.failed;
    if (this.finished) throw new StreamError('data after the end of the stream', this.consumed, this.section);
    this.stats.bytes += chunk.length;
    if (this.inTail) {
      this.tail.push(chunk);
      this.tailBytes += chunk.length;
      return;
    }
    this.chunks.push(chunk);
    this.available += chunk.length;
    try {
      this.drain();
    } catch (e) {
      // A StreamError from the grammar, or the sink's own error (e.g. the page store's), passed on unchanged.
      this.failed = e as Error;
      throw e;
    }
  }

  /** The stream has ended: checks it ended where a stream may end and returns its parts. */
  end(): ParsedStream {
    if (this.failed) throw this.failed;
    this.finished = true;
    if (!this.inTail) {
      throw new StreamError(
        `the stream ended inside a record (${this.available} bytes left over, ` +
          `${this.need === RAM_RECORDS ? 'a `ram` record' : this.need} wanted)`,
        this.consumed,
        this.section,
      );
    }
    const tail = Buffer.concat(this.tail, this.tailBytes);
    const { deviceState, vmdesc } = splitTail(tail, this.consumed);
    return {
      header: this.header!, machine: this.machine, ramSectionId: this.ramSid, blocks: this.blocks, deviceState, vmdesc,
      stats: { ...this.stats },
    };
  }

  private drain(): void {
    while (!this.inTail && this.available >= this.need) {
      let bytes: Buffer;
      if (this.need === RAM_RECORDS) {
        // Page records straight from the chunk, no generator step and no Buffer per record; the record they stop
        // at (EOS, a block name, a record cut by the chunk's end, anything to refuse) is the generator's.
        if (this.available === 0) break;
        if (this.fastPages()) continue;
        bytes = NOTHING;
      } else bytes = this.take(this.need);
      const r = this.gen.next(bytes);
      if (r.done) throw new StreamError('parser ended early', this.consumed, this.section);
      this.need = r.value;
      if (this.need === TAIL) {
        this.inTail = true;
        for (const c of this.chunks) {
          this.tail.push(c);
          this.tailBytes += c.length;
        }
        this.chunks.length = 0;
        this.available = 0;
      }
    }
  }

  /**
   * Reads the ZERO and PAGE records with CONTINUE (the block of the record before) that lie whole in the first
   * chunk, from its start, exactly as `ramPages` would, and reports them to the sink. Returns true when it used the
   * whole chunk (more is needed), false when it stopped at a record it leaves to `ramPages` (which refuses what is
   * wrong with the same error as ever).
   */
  private fastPages(): boolean {
    const c = this.chunks[0]!;
    const n = c.length;
    const blk = this.lastBlock;
    if (blk < 0) return false;
    const blockLength = this.blocks[blk]!.length;
    const sink = this.sink;
    const at = sink.pageAt ? sink : undefined;
    let p = 0;
    let pages = 0;
    let zeros = 0;
    try {
      while (p + 8 <= n) {
        const lo = c.readUInt32BE(p + 4);
        const flags = lo & 0xfff;
        let len: number;
        if (flags === (RAM.PAGE | RAM.CONTINUE)) len = 8 + PAGE_SIZE;
        else if (flags === (RAM.ZERO | RAM.CONTINUE) && p + 9 <= n && c[p + 8] === 0) len = 9;
        else break;
        if (p + len > n) break;
        const offset = c.readUInt32BE(p) * TWO32 + (lo - flags);
        if (offset >= blockLength) break;
        const index = offset / PAGE_SIZE;
        // Counted before the sink sees the record, as `take` counts it: a sink's error leaves `consumed` at its end.
        p += len;
        this.consumed += len;
        this.available -= len;
        if (len === 9) {
          zeros++;
          sink.page(blk, index, null);
        } else {
          pages++;
          if (at) at.pageAt!(blk, index, c, p - PAGE_SIZE);
          else sink.page(blk, index, c.subarray(p - PAGE_SIZE, p));
        }
      }
    } finally {
      this.stats.pageRecords += pages;
      this.stats.zeroRecords += zeros;
      if (p === n) this.chunks.shift();
      else if (p > 0) this.chunks[0] = c.subarray(p);
    }
    return p === n;
  }

  /** The next n bytes: a view into one chunk when they fit in it, a copy otherwise. */
  private take(n: number): Buffer {
    this.consumed += n;
    this.available -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }

  private fail(reason: string, at = this.recordAt): never {
    throw new StreamError(reason, at, this.section);
  }

  // ---- the grammar, as a generator that yields how many bytes it wants next ----

  private *u8(): Generator<number, number, Buffer> {
    return (yield 1)[0]!;
  }
  private *be32(): Generator<number, number, Buffer> {
    return (yield 4).readUInt32BE(0);
  }
  private *be64(): Generator<number, bigint, Buffer> {
    return (yield 8).readBigUInt64BE(0);
  }
  private *counted(): Generator<number, string, Buffer> {
    const n = yield* this.u8();
    if (n === 0) return '';
    return (yield n).toString('latin1');
  }

  private *parse(): Reader {
    const head: Buffer[] = [];
    const keep = function* (this: MigrationStreamParser, n: number): Generator<number, Buffer, Buffer> {
      const b = Buffer.from(yield n);
      head.push(b);
      return b;
    }.bind(this);

    const magic = yield* keep(8);
    if (magic.readUInt32BE(0) !== QEVM_MAGIC)
      this.fail(`not a QEMU migration stream (magic 0x${magic.readUInt32BE(0).toString(16)}, expected "QEVM")`, 0);
    if (magic.readUInt32BE(4) !== QEVM_VERSION)
      this.fail(`stream version ${magic.readUInt32BE(4)}, only ${QEVM_VERSION} is understood`, 4);

    let type = (yield* keep(1))[0]!;
    if (type === REC.CONFIGURATION) {
      this.section = 'configuration';
      this.recordAt = this.consumed - 1;
      const len = (yield* keep(4)).readUInt32BE(0);
      if (len === 0 || len > 256) this.fail(`machine type name of ${len} bytes`);
      this.machine = (yield* keep(len)).toString('latin1');
      // Subsections follow without a terminator: the next byte is 0x05 for one more, else the first record.
      for (;;) {
        this.recordAt = this.consumed;
        type = (yield* keep(1))[0]!;
        if (type !== REC.SUBSECTION) break;
        const nlen = (yield* keep(1))[0]!;
        const name = (yield* keep(nlen)).toString('latin1');
        const version = (yield* keep(4)).readUInt32BE(0);
        if (!(CONFIG_SUBSECTIONS as readonly string[]).includes(name))
          this.fail(`unknown configuration subsection '${name}'`);
        if (version !== 1) this.fail(`configuration subsection '${name}' version ${version}, only 1 is understood`);
        if (name === 'configuration/target-page-bits') {
          const bits = (yield* keep(4)).readUInt32BE(0);
          if (bits !== PAGE_SHIFT) this.fail(`target page bits ${bits}, only ${PAGE_SHIFT} is understood`);
        } else if (name === 'configuration/capabilities') {
          const count = (yield* keep(4)).readUInt32BE(0);
          if (count > 64) this.fail(`${count} capabilities`);
          for (let i = 0; i < count; i++) {
            const cl = (yield* keep(1))[0]!;
            const cap = (yield* keep(cl)).toString('latin1');
            // x-ignore-shared changes the `ram` START layout (a be64 address per block), which this parser does not
            // read.
            this.fail(`the stream was made with capability '${cap}', which Oriel does not support`);
          }
        } else {
          yield* keep(16); // the source's UUID (validate-uuid)
        }
      }
    }
    // The type byte of the first record was kept in `head`; it belongs to the body.
    head.pop();
    this.header = Buffer.concat(head);
    head.length = 0;

    for (;;) {
      this.recordAt = this.consumed - 1;
      switch (type) {
        case REC.SECTION_START:
        case REC.SECTION_FULL: {
          this.section = 'section header';
          const sid = yield* this.be32();
          const idstr = yield* this.counted();
          const instance = yield* this.be32();
          const version = yield* this.be32();
          this.section = idstr;
          if (idstr !== RAM_SECTION) {
            // The first device section: from here to the end is opaque. Give back the bytes of its header.
            const h = Buffer.alloc(1 + 4 + 1 + idstr.length + 8);
            h[0] = type;
            h.writeUInt32BE(sid, 1);
            h[5] = idstr.length;
            h.write(idstr, 6, 'latin1');
            h.writeUInt32BE(instance, 6 + idstr.length);
            h.writeUInt32BE(version, 10 + idstr.length);
            this.tail.push(h);
            this.tailBytes += h.length;
            this.section = `${idstr} (device state)`;
            yield TAIL;
            return;
          }
          if (type === REC.SECTION_FULL) this.fail('`ram` as a FULL section');
          if (this.ramSid >= 0) this.fail('a second `ram` START section');
          if (instance !== 0) this.fail(`\`ram\` instance ${instance}, expected 0`);
          if (version !== RAM_VERSION) this.fail(`\`ram\` version ${version}, only ${RAM_VERSION} is understood`);
          this.ramSid = sid;
          yield* this.ramSetup();
          yield* this.footer(sid);
          break;
        }
        case REC.SECTION_PART:
        case REC.SECTION_END: {
          this.section = 'section header';
          const sid = yield* this.be32();
          if (sid !== this.ramSid)
            this.fail(`${RECORD_NAMES[type]} for section id ${sid}, which is not the \`ram\` section (${this.ramSid})`);
          this.section = RAM_SECTION;
          this.stats.ramSections++;
          yield* this.ramPages();
          yield* this.footer(sid);
          if (type === REC.SECTION_END) this.stats.sawEnd = true;
          break;
        }
        case REC.EOF: {
          // No device section at all (not something QEMU sends, but well-formed): EOF and what follows are the tail.
          this.tail.push(Buffer.from([REC.EOF]));
          this.tailBytes += 1;
          this.section = 'end';
          yield TAIL;
          return;
        }
        case REC.COMMAND: {
          const cmd = (yield 4).readUInt16BE(0);
          this.fail(`COMMAND record ${cmd} (postcopy, COLO or return-path streams are not supported)`);
          break;
        }
        default:
          this.fail(
            `unexpected record type 0x${type.toString(16)}${RECORD_NAMES[type] ? ` (${RECORD_NAMES[type]})` : ''}`,
          );
      }
      this.section = 'between sections';
      type = yield* this.u8();
    }
  }

  private *footer(sid: number): Generator<number, void, Buffer> {
    const at = this.consumed;
    const b = yield 5;
    if (b[0] !== REC.SECTION_FOOTER) this.fail(`expected a section footer (0x7e), found 0x${b[0]!.toString(16)}`, at);
    if (b.readUInt32BE(1) !== sid) this.fail(`footer of section ${b.readUInt32BE(1)}, expected ${sid}`, at);
  }

  /** `ram_save_setup`: be64 total|MEM_SIZE, {counted id, be64 used_length} until the lengths add up, be64 EOS. */
  private *ramSetup(): Generator<number, void, Buffer> {
    const at = this.consumed;
    const v = yield* this.be64();
    const flags = Number(v & 0xfffn);
    if (flags !== RAM.MEM_SIZE)
      this.fail(`\`ram\` START begins with flags ${ramFlagNames(flags)}, expected MEM_SIZE`, at);
    const total = v & ~0xfffn;
    let sum = 0n;
    const blocks: RamBlock[] = [];
    while (sum < total) {
      const bat = this.consumed;
      const id = yield* this.counted();
      const len = yield* this.be64();
      if (id === '' || len === 0n || len % BigInt(PAGE_SIZE) !== 0n || len > 1n << 44n)
        this.fail(`RAM block '${id}' of length ${len}`, bat);
      if (blocks.some((b) => b.id === id)) this.fail(`RAM block '${id}' listed twice`, bat);
      blocks.push({ id, length: Number(len) });
      sum += len;
    }
    if (sum !== total) this.fail(`RAM block lengths add up to ${sum}, the header says ${total}`, at);
    const eos = this.consumed;
    const e = yield* this.be64();
    if (e !== BigInt(RAM.EOS))
      this.fail(`\`ram\` START not ended by EOS (found flags ${ramFlagNames(Number(e & 0xfffn))})`, eos);
    this.blocks = blocks;
    this.sink.blocks?.(blocks, this.ramSid);
  }

  /** Page records up to EOS (ram.c `ram_load_precopy`). */
  private *ramPages(): Generator<number, void, Buffer> {
    for (;;) {
      yield RAM_RECORDS; // the feeder reads plain records itself (fastPages), up to one it leaves to the code below
      const at = this.consumed;
      const v = yield* this.be64();
      const flags = Number(v & 0xfffn);
      if (flags === RAM.EOS) return;
      const offset = v & ~0xfffn;
      const kind = flags & ~RAM.CONTINUE;
      if (kind !== RAM.ZERO && kind !== RAM.PAGE) {
        this.fail(
          `\`ram\` record with flags ${ramFlagNames(flags)} (only ZERO and PAGE records are supported: turn off xbzrle, compress, multifd, rdma)`,
          at,
        );
      }
      if (!(flags & RAM.CONTINUE)) {
        const id = yield* this.counted();
        const i = this.blocks.findIndex((b) => b.id === id);
        if (i < 0) this.fail(`page of unknown RAM block '${id}'`, at);
        this.lastBlock = i;
      } else if (this.lastBlock < 0) {
        this.fail('CONTINUE page record before any named block', at);
      }
      const block = this.blocks[this.lastBlock]!;
      if (offset >= BigInt(block.length))
        this.fail(`page offset 0x${offset.toString(16)} beyond RAM block '${block.id}' (${block.length} bytes)`, at);
      const index = Number(offset >> BigInt(PAGE_SHIFT));
      if (kind === RAM.ZERO) {
        const fill = yield* this.u8();
        if (fill !== 0) this.fail(`ZERO page record with fill byte 0x${fill.toString(16)}`, at);
        this.stats.zeroRecords++;
        this.sink.page(this.lastBlock, index, null);
      } else {
        const data = yield PAGE_SIZE;
        this.stats.pageRecords++;
        this.sink.page(this.lastBlock, index, data);
      }
    }
  }
}

/**
 * Splits the tail into device state (up to and including EOF) and the VMDESCRIPTION record, found from the end
 * as `scripts/analyze-migration.py` does: 0x06, be32 n, then exactly n bytes of JSON to the end, preceded by EOF.
 */
export function splitTail(tail: Buffer, tailOffset: number): { deviceState: Buffer; vmdesc: Buffer } {
  for (let p = tail.length - 6; p >= 1; p--) {
    if (tail[p] !== REC.VMDESCRIPTION || tail[p - 1] !== REC.EOF) continue;
    if (tail.readUInt32BE(p + 1) !== tail.length - p - 5 || tail[p + 5] !== 0x7b /* { */) continue;
    return { deviceState: tail.subarray(0, p), vmdesc: tail.subarray(p) };
  }
  if (tail.length > 0 && tail[tail.length - 1] === REC.EOF) return { deviceState: tail, vmdesc: Buffer.alloc(0) };
  throw new StreamError(
    'the stream does not end with EOF (and a VMDESCRIPTION): cut short?',
    tailOffset + tail.length,
    'end',
  );
}

/** Parses a whole stream held in memory (tests, tools). Pages go to `sink`. */
export function parseStream(bytes: Buffer, sink: StreamSink, chunkSize = 65536): ParsedStream {
  const p = new MigrationStreamParser(sink);
  for (let i = 0; i < bytes.length; i += chunkSize) p.push(bytes.subarray(i, i + chunkSize));
  return p.end();
}
