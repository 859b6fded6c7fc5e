// The parser's fast path (page records read straight from the received chunk, stream/parser.ts `fastPages`) against
// its record-by-record path, on synthetic streams from the store's own writer: every chunking gives the same pages,
// the same stats and the same errors at the same offsets; page offsets past 4 GiB keep their index.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  MigrationStreamParser, StreamError, writeStream, type PageRecord, type ParsedStream, type StreamSink,
} from '../../src/checkpoint/stream/index.ts';

const header = (): Buffer => {
  const machine = Buffer.from('pc-q35-7.2', 'latin1');
  const b = Buffer.alloc(13);
  b.writeUInt32BE(0x5145564d, 0);
  b.writeUInt32BE(3, 4);
  b[8] = 0x07;
  b.writeUInt32BE(machine.length, 9);
  return Buffer.concat([b, machine]);
};
const tail = Buffer.from([0x00]); // EOF, no device section

const GiB = 2 ** 30;
const blocks = [{ id: 'pc.ram', length: 6 * GiB }, { id: 'vga.vram', length: 16 * 4096 }];
const big = (5 * GiB) / 4096 + 3; // a page past 4 GiB: its offset does not fit 32 bits
const pageList: PageRecord[] = [];
for (let i = 0; i < 40; i++) pageList.push({ block: 0, index: i, data: i % 3 === 0 ? null : randomBytes(4096) });
pageList.push({ block: 0, index: big, data: randomBytes(4096) }, { block: 0, index: big + 1, data: null });
for (let i = 0; i < 5; i++) pageList.push({ block: 1, index: i, data: i % 2 ? null : randomBytes(4096) });
pageList.push({ block: 0, index: 7, data: randomBytes(4096) }); // sent again (precopy): reported again
const stream = Buffer.concat([
  ...writeStream({ header: header(), ramSectionId: 2, blocks, deviceState: tail }, pageList, 16),
]);

interface Seen { recs: string[]; parsed: ParsedStream }
function parse(bytes: Buffer, chunk: number, viaPageAt: boolean): Seen {
  const recs: string[] = [];
  const sink: StreamSink = {
    page: (b, i, d) => void recs.push(`${b}:${i}:${d ? d.toString('base64') : 'zero'}`),
    ...(viaPageAt ? {
      pageAt: (b: number, i: number, c: Buffer, o: number) =>
        void recs.push(`${b}:${i}:${c.toString('base64', o, o + 4096)}`),
    } : {}),
  };
  const p = new MigrationStreamParser(sink);
  for (let i = 0; i < bytes.length; i += chunk) p.push(bytes.subarray(i, i + chunk));
  return { recs, parsed: p.end() };
}

function failure(bytes: Buffer, chunk: number): { reason: string; offset: number; section: string; pages: number } {
  let pages = 0;
  const p = new MigrationStreamParser({ page: () => void pages++ });
  try {
    for (let i = 0; i < bytes.length; i += chunk) p.push(bytes.subarray(i, i + chunk));
    p.end();
  } catch (e) {
    assert.ok(e instanceof StreamError, `a StreamError, not ${String(e)}`);
    return { reason: e.reason, offset: e.offset, section: e.section, pages };
  }
  assert.fail('the stream was accepted');
}

/** The byte offset of the `n`th page record (0-based) of the stream above (PARTs of 16, first record named). */
function recordAt(n: number): number {
  let at = header().length + 1 + 4 + 1 + 3 + 8 + 8 + blocks.reduce((a, b) => a + 1 + b.id.length + 8, 0) + 8 + 5;
  let last = -1;
  for (let k = 0; k <= n; k++) {
    if (k % 16 === 0) {
      at += 5;
      last = -1;
    }
    const p = pageList[k]!;
    const len = 8 + (p.block !== last ? 1 + blocks[p.block]!.id.length : 0) + (p.data ? 4096 : 1);
    if (k === n) return at;
    at += len;
    last = p.block;
    if (k % 16 === 15) at += 13; // EOS, footer
  }
  return at;
}

describe('migration stream parser: fast path', () => {
  const ref = parse(stream, 1, false); // one byte at a time: never a whole record in a chunk, all the slow path

  test('every chunking and both sink forms give the same records and stats', () => {
    assert.equal(ref.recs.length, pageList.length);
    assert.deepEqual(ref.parsed.stats, {
      bytes: stream.length, pageRecords: pageList.filter((p) => p.data).length,
      zeroRecords: pageList.filter((p) => !p.data).length, ramSections: 3, sawEnd: false,
    });
    for (const chunk of [7, 4096, 4105, 4106, 65536, stream.length]) {
      for (const viaPageAt of [false, true]) {
        const got = parse(stream, chunk, viaPageAt);
        assert.deepEqual(got.recs, ref.recs, `chunks of ${chunk}${viaPageAt ? ', pageAt' : ''}`);
        assert.deepEqual(got.parsed.stats, ref.parsed.stats);
      }
    }
  });

  test('a page past 4 GiB keeps its index', () => {
    const want = pageList.map((p) => `${p.block}:${p.index}`);
    assert.deepEqual(ref.recs.map((r) => r.split(':').slice(0, 2).join(':')), want);
    assert.ok(parse(stream, 65536, true).recs.some((r) => r.startsWith(`0:${big}:`)));
  });

  test('what it refuses, it refuses alike on every chunking, at the same offset', () => {
    const bad: [string, (b: Buffer) => void, RegExp][] = [
      ['a ZERO record with fill 0x01', (b) => void (b[recordAt(3) + 8] = 1), /fill byte 0x1/],
      ['an offset past its block', (b) => b.writeUInt32BE(0x7fff, recordAt(5)), /beyond RAM block 'pc.ram'/],
      ['an XBZRLE record', (b) => void (b[recordAt(6) + 7] = 0x40 | 0x20), /XBZRLE/],
    ];
    for (const [what, spoil, re] of bad) {
      const b = Buffer.from(stream);
      spoil(b);
      const slow = failure(b, 1);
      assert.match(slow.reason, re, what);
      for (const chunk of [4105, 65536, b.length]) assert.deepEqual(failure(b, chunk), slow, `${what}, chunks of ${chunk}`);
    }
  });

  test("a sink's error stops the parser and is passed on unchanged", () => {
    let n = 0;
    const p = new MigrationStreamParser({
      page: () => { if (++n === 10) throw new Error('disk full'); },
      pageAt: () => { if (++n === 10) throw new Error('disk full'); },
    });
    assert.throws(() => p.push(stream), /disk full/);
    assert.throws(() => p.push(Buffer.alloc(1)), /disk full/);
    assert.equal(n, 10);
  });
});
