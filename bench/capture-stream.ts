// Synthetic QEMU 7.2 migration streams for the capture benchmark (bench/capture-throughput.ts): the same bytes
// QEMU writes for a background snapshot (header with CONFIGURATION, `ram` START with the block list, PARTs of page
// records naming the block then CONTINUE, device state FULL sections, EOF, VMDESCRIPTION), built with the store's own
// writer (stream/writer.ts), whose output QEMU 7.2 loads with -incoming.
// Page kinds, chosen page by page from a seeded generator:
//   zero      ZERO records (9 bytes on the wire)
//   repeated  one of 32 fixed pages (dedup: stored once)
//   text      compressible: 4 KiB of a word corpus at a random offset with 16 random bytes stamped in (unique)
//   random    4 KiB of random bytes (incompressible: stored raw)
// An incremental stream is the full one with `changed` of its non-zero pages given new content of the same kind
// (a background snapshot sends every page each time, changed or not).
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { writeStream, type PageRecord, type StreamParts } from '../src/checkpoint/stream/index.ts';

export type PageKind = 'zero' | 'repeated' | 'text' | 'random';
export type Mix = Partial<Record<PageKind, number>>;

const WORDS = (
  'the of and to in is was for on that with as by at from kernel page memory process file buffer cache inode ' +
  'dentry slab struct task thread mutex lock queue device driver network socket packet vma mm pgd pte 0 1 2 ' +
  'ffffffff 00000000 null true false return void int char unsigned long static const include define'
).split(' ');

/** A deterministic 32-bit generator (mulberry32): the same seed gives the same stream. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function corpus(bytes: number, next: () => number): Buffer {
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    const w = WORDS[Math.floor(next() * WORDS.length)]!;
    parts.push(w);
    n += w.length + 1;
  }
  return Buffer.from(parts.join(next() < 0.5 ? ' ' : '\n').slice(0, bytes), 'latin1');
}

export interface SyntheticGuest {
  pages: number;
  kinds: Uint8Array; // index into KINDS
  /** Per page: a seed for its content (an incremental stream changes some). */
  seeds: Uint32Array;
}
const KINDS: PageKind[] = ['zero', 'repeated', 'text', 'random'];

export function makeGuest(memMiB: number, mix: Mix, seed = 1): SyntheticGuest {
  const pages = (memMiB * 2 ** 20) / 4096;
  const next = rng(seed);
  const total = KINDS.reduce((a, k) => a + (mix[k] ?? 0), 0);
  const kinds = new Uint8Array(pages);
  const seeds = new Uint32Array(pages);
  // Runs of 1–256 pages of one kind (guest memory is not shuffled page by page).
  for (let i = 0; i < pages; ) {
    let r = next() * total;
    let k = 0;
    while (k < KINDS.length - 1 && r >= (mix[KINDS[k]!] ?? 0)) r -= mix[KINDS[k++]!] ?? 0;
    const run = 1 + Math.floor(next() * 256);
    for (let j = 0; j < run && i < pages; j++, i++) {
      kinds[i] = k;
      seeds[i] = Math.floor(next() * 2 ** 32);
    }
  }
  return { pages, kinds, seeds };
}

/** The guest after `fraction` of its non-zero pages got new content. */
export function dirtied(g: SyntheticGuest, fraction: number, seed = 2): SyntheticGuest {
  const next = rng(seed);
  const seeds = g.seeds.slice();
  for (let i = 0; i < g.pages; i++) if (g.kinds[i] !== 0 && next() < fraction) seeds[i] = Math.floor(next() * 2 ** 32);
  return { ...g, seeds };
}

const TEXT = corpus(4 * 2 ** 20, rng(7));
const REPEATED = Array.from({ length: 32 }, (_, i) => {
  const p = Buffer.from(TEXT.subarray(i * 4096, (i + 1) * 4096));
  if (i % 2) randomBytes(4096).copy(p); // half of them random-looking
  return p;
});

function pageData(kind: number, seed: number): Buffer | null {
  switch (KINDS[kind]) {
    case 'zero':
      return null;
    case 'repeated':
      return REPEATED[seed % 32]!;
    case 'text': {
      const p = Buffer.allocUnsafe(4096);
      const at = (seed % (TEXT.length / 8 - 512)) * 8;
      TEXT.copy(p, 0, at, at + 4096);
      p.writeUInt32LE(seed, (seed >>> 4) & 0xff0);
      p.writeUInt32LE((seed ^ 0x9e3779b9) >>> 0, 4092 - ((seed >>> 12) & 0xff0));
      return p;
    }
    default: {
      const p = Buffer.allocUnsafe(4096);
      // Random content derived from the seed (a fresh random page each time the seed changes).
      const next = rng(seed);
      for (let o = 0; o < 4096; o += 4) p.writeUInt32LE((next() * 2 ** 32) >>> 0, o);
      return p;
    }
  }
}

/** Device state as QEMU sends it after the RAM: a few FULL sections, EOF, and the JSON VMDESCRIPTION. */
function deviceTail(): { deviceState: Buffer; vmdesc: Buffer } {
  const secs: Buffer[] = [];
  let sid = 3;
  for (const [name, size] of [['timer', 24], ['cpu_common', 16], ['cpu', 4200], ['apic', 900], ['kvmclock', 24]] as const) {
    const h = Buffer.alloc(1 + 4 + 1 + name.length + 8);
    h[0] = 0x04;
    h.writeUInt32BE(sid, 1);
    h[5] = name.length;
    h.write(name, 6, 'latin1');
    h.writeUInt32BE(0, 6 + name.length);
    h.writeUInt32BE(1, 10 + name.length);
    const foot = Buffer.from([0x7e, 0, 0, 0, 0]);
    foot.writeUInt32BE(sid++, 1);
    secs.push(h, randomBytes(size), foot);
  }
  secs.push(Buffer.from([0x00]));
  const json = Buffer.from(JSON.stringify({ 'page_size': 4096, devices: [{ name: 'timer', instance_id: 0 }] }));
  const vm = Buffer.alloc(5);
  vm[0] = 0x06;
  vm.writeUInt32BE(json.length, 1);
  return { deviceState: Buffer.concat(secs), vmdesc: Buffer.concat([vm, json]) };
}

function header(): Buffer {
  const machine = Buffer.from('pc-q35-7.2', 'latin1');
  const b = Buffer.alloc(8 + 1 + 4);
  b.writeUInt32BE(0x5145564d, 0);
  b.writeUInt32BE(3, 4);
  b[8] = 0x07;
  b.writeUInt32BE(machine.length, 9);
  return Buffer.concat([b, machine]);
}

/** Writes the guest's stream to `file`; returns its size in bytes. */
export async function writeGuestStream(g: SyntheticGuest, file: string): Promise<number> {
  const { deviceState, vmdesc } = deviceTail();
  const parts: StreamParts = {
    header: header(), ramSectionId: 2, blocks: [{ id: 'pc.ram', length: g.pages * 4096 }], deviceState, vmdesc,
  };
  function* pages(): Generator<PageRecord> {
    for (let i = 0; i < g.pages; i++) yield { block: 0, index: i, data: pageData(g.kinds[i]!, g.seeds[i]!) };
  }
  const out = createWriteStream(file);
  let n = 0;
  for (const b of writeStream(parts, pages())) {
    n += b.length;
    if (!out.write(b)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'close');
  return n;
}
