// The pages a lazy restore of a checkpoint was asked for (its guest's working set at resume), kept beside the
// checkpoint so that the next lazy restore of it pushes them first, before the guest asks (REAP, Ustiugov et al.,
// ASPLOS'21: record the pages a restored function touches, load them ahead on the next restore). One JSON file per
// checkpoint under <store>/working-sets/, by block id and page index; each restore adds the pages it was asked for
// (the record converges on the pages the guest reads at resume that the push order did not bring in time). A record
// is a hint: a missing or unreadable one, or one for other RAM blocks, only means no head start. A checkpoint with no
// record of its own borrows its nearest ancestor's.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PAGE_SIZE } from './stream/index.ts';
import { writeFileAtomic, type Manifest } from './page-store/index.ts';

/** Pages kept per checkpoint (the tiny guest asks for ~300-400 pages up to its first serial answer). */
const MAX_PAGES = 16_384;

interface Record {
  v: 1;
  /** Block ids, indexed by the first number of each page. */
  blocks: string[];
  /** [block, page index], in the order they were first asked for. */
  pages: [number, number][];
  /** How many of `pages`, from the first, were asked for before QEMU had loaded the devices (their loads walk
   * guest RAM): the only ones pushed before the guest runs. */
  early?: number;
}

/** A record mapped onto a checkpoint's blocks: global page numbers, the `early` first ones asked during the device
 * loads. */
export interface WorkingSet {
  pages: number[];
  early: number;
}

export class WorkingSets {
  private readonly dir: string;

  constructor(storeRoot: string) {
    this.dir = join(storeRoot, 'working-sets');
  }

  private path(id: string): string {
    if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new Error(`bad checkpoint id '${id}'`);
    return join(this.dir, `${id}.json`);
  }

  /** The recorded pages of checkpoint `m`, as global page numbers over its blocks (in block order), oldest first. */
  read(m: Manifest): WorkingSet {
    const none = { pages: [], early: 0 };
    const p = this.path(m.id);
    if (!existsSync(p)) return none;
    let r: Record;
    try {
      r = JSON.parse(readFileSync(p, 'utf8')) as Record;
    } catch {
      return none;
    }
    if (r.v !== 1 || !Array.isArray(r.pages) || !Array.isArray(r.blocks)) return none;
    const early = Number.isInteger(r.early) ? r.early! : 0;
    const base = new Map<string, { at: number; pages: number }>();
    let total = 0;
    for (const b of m.stream.blocks) {
      base.set(b.id, { at: total, pages: b.length / PAGE_SIZE });
      total += b.length / PAGE_SIZE;
    }
    const out: WorkingSet = { pages: [], early: 0 };
    r.pages.forEach((e, k) => {
      if (!Array.isArray(e)) return;
      const [b, i] = e;
      const blk = base.get(r.blocks[b] ?? '');
      if (!blk || !Number.isInteger(i) || i < 0 || i >= blk.pages) return;
      out.pages.push(blk.at + i);
      if (k < early) out.early++;
    });
    return out;
  }

  /** m's own record, else the nearest ancestor's that has one (up to `depth` parents: a child's guest mostly reads
   * where its parent's did, the kernel and the programs it runs at the same places), mapped onto m's blocks. */
  readNearest(
    m: Manifest,
    get: (id: string) => Manifest | undefined,
    depth = 8,
  ): WorkingSet & { from: string | null } {
    let cur: Manifest | undefined = m;
    for (let d = 0; cur && d <= depth; d++) {
      const own = this.read(cur);
      if (own.pages.length) return { ...(cur === m ? own : this.read({ ...m, id: cur.id })), from: cur.id };
      cur = cur.parent ? get(cur.parent) : undefined;
    }
    return { pages: [], early: 0, from: null };
  }

  /** Adds `asked` (global page numbers over m's blocks, in order; the `early` first ones during the device loads)
   * to m's record: early pages after the early ones it has, the others at its end. */
  add(m: Manifest, asked: number[], early = 0): void {
    const have = this.read(m);
    const seen = new Set(have.pages);
    const fresh = (g: number) => !seen.has(g) && (seen.add(g), true);
    const newEarly = asked.slice(0, early).filter(fresh);
    const newLate = asked.slice(early).filter(fresh);
    const all = [
      ...have.pages.slice(0, have.early), ...newEarly, ...have.pages.slice(have.early), ...newLate,
    ].slice(0, MAX_PAGES);
    const starts: number[] = [];
    let total = 0;
    for (const b of m.stream.blocks) {
      starts.push(total);
      total += b.length / PAGE_SIZE;
    }
    const pages = all.map((g): [number, number] => {
      let b = starts.length - 1;
      while (b > 0 && starts[b]! > g) b--;
      return [b, g - starts[b]!];
    });
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const r: Record = {
      v: 1, blocks: m.stream.blocks.map((b) => b.id), pages, early: Math.min(all.length, have.early + newEarly.length),
    };
    writeFileAtomic(this.path(m.id), JSON.stringify(r));
  }

  remove(id: string): void {
    rmSync(this.path(id), { force: true });
  }
}
