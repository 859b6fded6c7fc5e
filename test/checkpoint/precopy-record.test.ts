// A precopy checkpoint, without a guest: a stream built the way QEMU 7.2's precopy writes one (START, PARTs that
// send the same pages again, END, the device sections) goes through the parser into the page store, and the record
// keeps the LAST version of every page: a page re-sent with new data, a zero page after a non-zero version and a
// non-zero one after a zero, CONTINUE records that refer to the block of the previous section, pages of a second
// RAMBlock (vga.vram), with or without a parent checkpoint. The eager restore stream rebuilt from the store carries
// exactly those versions, each page once, and the device state that followed the final iteration. And the pause
// recipe's choice: precopy only under KVM (QEMU 7.2's precopy loses guest writes under TCG: pause-mode.ts).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { scratchRoot } from '../../src/config.ts';
import {
  PAGE_SIZE, RAM, REC, pageRecordHeader, parseStream, ramStart, writeStream, type RamBlock,
} from '../../src/checkpoint/stream/index.ts';
import { CheckpointStore, type Manifest, type ManifestMeta } from '../../src/checkpoint/page-store/index.ts';
import { choosePauseMode, pauseModeFromEnv, PRECOPY_DISK_LIMIT } from '../../src/checkpoint/pause-mode.ts';

const SID = 2;
const BLOCKS: RamBlock[] = [
  { id: 'pc.ram', length: 4 * PAGE_SIZE },
  { id: '0000:00:02.0/vga.vram', length: 2 * PAGE_SIZE },
];
const page = (tag: string) => Buffer.alloc(PAGE_SIZE, tag);

function header(): Buffer {
  const machine = Buffer.from('pc-i440fx-7.2', 'latin1');
  const b = Buffer.alloc(13);
  b.write('QEVM', 0, 'latin1');
  b.writeUInt32BE(3, 4);
  b[8] = REC.CONFIGURATION;
  b.writeUInt32BE(machine.length, 9);
  return Buffer.concat([b, machine]);
}

type Rec = [block: number, index: number, data: string | null, named: boolean];
/** A `ram` PART (or END) section: page records as QEMU's save_page_header writes them, EOS, footer. */
function section(type: number, recs: Rec[]): Buffer {
  const out: Buffer[] = [Buffer.from([type, 0, 0, 0, SID])];
  for (const [b, i, d, named] of recs) {
    out.push(pageRecordHeader(BLOCKS[b]!.id, i, d !== null, named));
    if (d !== null) out.push(page(d));
  }
  const end = Buffer.alloc(13);
  end.writeBigUInt64BE(BigInt(RAM.EOS));
  end[8] = REC.SECTION_FOOTER;
  end.writeUInt32BE(SID, 9);
  out.push(end);
  return Buffer.concat(out);
}

/** Device sections after the final iteration: a FULL section whose payload names the instant, EOF, VMDESCRIPTION. */
function deviceTail(instant: string): { deviceState: Buffer; vmdesc: Buffer } {
  const name = Buffer.from('timer', 'latin1');
  const h = Buffer.alloc(14);
  h[0] = REC.SECTION_FULL;
  h.writeUInt32BE(3, 1);
  h[5] = name.length;
  const deviceState = Buffer.concat([
    h.subarray(0, 6), name, Buffer.from([0, 0, 0, 0, 0, 0, 0, 2]), Buffer.from(instant, 'latin1'),
    Buffer.from([REC.SECTION_FOOTER, 0, 0, 0, 3, REC.EOF]),
  ]);
  const json = Buffer.from('{"page_size":4096,"devices":[]}', 'latin1');
  const vmdesc = Buffer.concat([Buffer.from([REC.VMDESCRIPTION, 0, 0, 0, json.length]), json]);
  return { deviceState, vmdesc };
}

// Iteration 1 sends everything; later ones re-send what the guest dirtied again. Letters are page versions.
const tail = deviceTail('final-instant');
const STREAM = Buffer.concat([
  header(),
  ramStart(SID, BLOCKS),
  section(REC.SECTION_PART, [
    [0, 0, 'a', true], [0, 1, 'b', false], [0, 2, null, false], [0, 3, null, false],
    [1, 0, 'v', true], [1, 1, 'w', false],
  ]),
  // Starts with CONTINUE: the block of the previous section's last record (vga.vram).
  section(REC.SECTION_PART, [
    [1, 0, 'x', false],
    [0, 0, 'A', true], [0, 1, null, false], [0, 2, 'c', false],
  ]),
  // The final iteration, with the guest stopped: CONTINUE into pc.ram again.
  section(REC.SECTION_END, [[1, 1, 'W', true], [0, 0, 'Z', true], [0, 3, 'd', false], [0, 2, 'C', false]]),
  tail.deviceState,
  tail.vmdesc,
]);
const LAST: Record<string, string | null> = {
  '0:0': 'Z', '0:1': null, '0:2': 'C', '0:3': 'd', '1:0': 'x', '1:1': 'W',
};

const meta = (id: string, parent: string | null): ManifestMeta => ({
  id, vmId: 'vm', vmName: 'vm', createdAt: new Date().toISOString(), parent, kind: 'manual',
  qemu: { version: '7.2.22' }, spec: {}, wasRunning: true, guestReady: true, disks: [],
  stats: { pauseMs: null, durationMs: 0, pauseMode: 'precopy' },
});

/** What each page of a stream ends up as, the last record winning (QEMU's loader), and how often it came. */
function loaded(bytes: Buffer) {
  const pages = new Map<string, string | null>();
  const count = new Map<string, number>();
  const parsed = parseStream(bytes, {
    page: (b, i, d) => {
      const k = `${b}:${i}`;
      pages.set(k, d ? String.fromCharCode(d[0]!) : null);
      count.set(k, (count.get(k) ?? 0) + 1);
    },
  }, 7); // chunks that split records anywhere
  return { parsed, pages: Object.fromEntries(pages), count };
}

function restoreStream(store: CheckpointStore, m: Manifest): Buffer {
  return Buffer.concat([...writeStream({
    header: store.blob(m.stream.header), ramSectionId: m.stream.ramSectionId,
    blocks: m.stream.blocks.map((b) => ({ id: b.id, length: b.length })),
    deviceState: store.blob(m.stream.deviceState), vmdesc: m.stream.vmdesc ? store.blob(m.stream.vmdesc) : undefined,
  }, store.pages(m))]);
}

describe('a precopy checkpoint record', () => {
  const dir = mkdtempSync(join(scratchRoot(), 'oprec-'));
  const store = new CheckpointStore(join(dir, 'store'));
  after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the stream as built: pages re-sent across iterations, the last record of each is the instant', () => {
    const { parsed, pages, count } = loaded(STREAM);
    assert.deepEqual(pages, LAST);
    assert.equal(count.get('0:0'), 3);
    assert.equal(parsed.stats.ramSections, 3);
    assert.equal(parsed.stats.sawEnd, true);
    assert.deepEqual(parsed.deviceState, tail.deviceState);
  });

  const check = (m: Manifest) => {
    const got: Record<string, string | null> = {};
    for (const p of store.pages(m)) got[`${p.block}:${p.index}`] = p.data ? String.fromCharCode(p.data[0]!) : null;
    assert.deepEqual(got, LAST, 'the store keeps each page\'s last version');
    assert.equal(m.stats.pages, 5);
    assert.equal(m.stats.zeroPages, 1);
    const r = loaded(restoreStream(store, m));
    assert.deepEqual(r.pages, LAST, 'the restore stream carries the last versions');
    assert.ok([...r.count.values()].every((n) => n === 1), 'each page once');
    assert.deepEqual(r.parsed.deviceState, tail.deviceState, 'the device state of the final iteration');
  };

  test('stored and rebuilt for an eager restore: last versions only, the final device state', async () => {
    const w = await store.beginCheckpoint();
    const m = w.finish(parseStream(STREAM, w, 7), meta('p1', null));
    check(m);
    assert.equal((await store.verify()).ok, true);
  });

  test('with a parent holding first versions, or the last ones, the record is the same', async () => {
    // A parent whose pages are the first versions sent here: a page found equal to its parent's is not the end.
    const first = Buffer.concat([
      header(), ramStart(SID, BLOCKS),
      section(REC.SECTION_PART, [
        [0, 0, 'a', true], [0, 1, 'b', false], [0, 2, null, false], [0, 3, null, false],
        [1, 0, 'v', true], [1, 1, 'w', false],
      ]),
      tail.deviceState, tail.vmdesc,
    ]);
    let w = await store.beginCheckpoint();
    const parentFirst = w.finish(parseStream(first, w), meta('p2', null));
    w = await store.beginCheckpoint({ parent: parentFirst });
    check(w.finish(parseStream(STREAM, w, 7), meta('p3', 'p2')));
    const parentLast = store.get('p1')!;
    w = await store.beginCheckpoint({ parent: parentLast });
    check(w.finish(parseStream(STREAM, w, 7), meta('p4', 'p1')));
  });
});

describe('the pause recipe', () => {
  const base = { hugepages: false, diskCopyBytes: 0, env: {} };
  test('auto (the default): precopy under KVM for ordinary RAM and a small disk backup, background otherwise', () => {
    assert.equal(choosePauseMode({ ...base, accel: 'kvm' }), 'precopy');
    assert.equal(choosePauseMode({ ...base, accel: 'kvm', env: { ORIEL_CHECKPOINT_PAUSE: 'auto' } }), 'precopy');
    assert.equal(choosePauseMode({ ...base, accel: 'kvm', diskCopyBytes: null }), 'precopy');
    assert.equal(choosePauseMode({ ...base, accel: 'kvm', hugepages: true }), 'background');
    assert.equal(choosePauseMode({ ...base, accel: 'kvm', diskCopyBytes: PRECOPY_DISK_LIMIT + 1 }), 'background');
  });

  test('never precopy under TCG: QEMU 7.2 loses guest writes there', () => {
    assert.equal(choosePauseMode({ ...base, accel: 'tcg' }), 'background');
    assert.equal(choosePauseMode({ ...base, accel: 'tcg', forced: 'auto' }), 'background');
    assert.equal(choosePauseMode({ ...base, accel: 'tcg', env: { ORIEL_CHECKPOINT_PAUSE: 'auto' } }), 'background');
    assert.throws(() => choosePauseMode({ ...base, accel: 'tcg', forced: 'precopy' }), /needs KVM/);
  });

  test('ORIEL_CHECKPOINT_PAUSE=background or a forced recipe overrides auto; a bad value is a clear error', () => {
    const env = { ORIEL_CHECKPOINT_PAUSE: 'background' };
    assert.equal(choosePauseMode({ ...base, accel: 'kvm', env }), 'background');
    assert.equal(choosePauseMode({ ...base, accel: 'kvm', env, forced: 'precopy' }), 'precopy');
    assert.equal(choosePauseMode({ ...base, accel: 'kvm', forced: 'background' }), 'background');
    assert.equal(pauseModeFromEnv({}), 'auto');
    assert.throws(() => pauseModeFromEnv({ ORIEL_CHECKPOINT_PAUSE: 'fast' }), /must be 'auto' \(the default\) or 'background'/);
  });
});
