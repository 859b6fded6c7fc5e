// The guest's names for host OpenCL objects. A token is 64 bits: a per-helper session (16 bits, random: a guest
// restored from a checkpoint holds tokens of a helper that is gone and gets "invalid object" errors, never another
// object), the object's kind (8 bits) and a sequence number (40 bits) that is never reused. Host pointers never
// reach the guest; a token of the wrong kind or session is refused before any lookup.
import { randomInt } from 'node:crypto';
import type { HandleKind } from './cl.ts';

const KIND_TAG: Record<HandleKind, number> = {
  device: 1, context: 2, queue: 3, mem: 4, program: 5, kernel: 6, event: 7,
};
const TAG_KIND = Object.fromEntries(Object.entries(KIND_TAG).map(([k, v]) => [v, k])) as Record<number, HandleKind>;
/** Objects one guest may hold at once. */
export const MAX_OBJECTS = 65_536;

export interface Entry {
  kind: HandleKind;
  host: bigint;
  /** The guest's references (retain/release): the entry goes when they reach 0. */
  refs: number;
  /** mem: its size in bytes. */
  size?: number;
  /** mem in the window: where its storage starts there. */
  windowOffset?: bigint;
  /** mem in the window: the host addresses of its live mappings (MAP_BUFFER, one per map). */
  maps?: bigint[];
  /** context: the tokens of its devices. */
  devices?: bigint[];
}

export class Handles {
  readonly session: bigint;

  /** `previous`: the session of the table this one follows (a new guest process's), never drawn again. */
  constructor(previous?: bigint) {
    let s: bigint;
    do s = BigInt(randomInt(1, 0xffff)); while (s === previous);
    this.session = s;
  }

  private next = 1n;
  private readonly table = new Map<bigint, Entry>();
  /** Devices are the host's own: one token each, for the helper's life. */
  private readonly deviceTokens = new Map<bigint, bigint>();

  get count(): number {
    return this.table.size;
  }

  add(kind: HandleKind, host: bigint, extra: Partial<Entry> = {}): bigint | undefined {
    if (kind === 'device') {
      const t = this.deviceTokens.get(host);
      if (t !== undefined) return t;
    }
    if (this.table.size >= MAX_OBJECTS) return undefined;
    const token = (this.session << 48n) | (BigInt(KIND_TAG[kind]) << 40n) | this.next++;
    this.table.set(token, { kind, host, refs: 1, ...extra });
    if (kind === 'device') this.deviceTokens.set(host, token);
    return token;
  }

  /** The entry of a token of that kind in this session, or undefined. */
  get(token: bigint, kind: HandleKind): Entry | undefined {
    if (token >> 48n !== this.session || TAG_KIND[Number((token >> 40n) & 0xffn)] !== kind) return undefined;
    return this.table.get(token);
  }

  /** The kind a token says it is (if of this session), for retain/release. */
  kindOf(token: bigint): HandleKind | undefined {
    if (token >> 48n !== this.session) return undefined;
    const kind = TAG_KIND[Number((token >> 40n) & 0xffn)];
    return kind && this.table.has(token) ? kind : undefined;
  }

  drop(token: bigint): void {
    this.table.delete(token);
  }

  /** Every live entry, newest first (teardown releases kernels before programs before contexts). */
  entries(): [bigint, Entry][] {
    return [...this.table.entries()].reverse();
  }
}
