// Builds display-channel drawing messages for tests: little-endian fields, and pointers (u32 offsets
// from the start of the body) whose targets are appended after the fixed part, as spice-server's
// marshaller lays them out.
import { miniMessage } from './fake.ts';
import { replayDisplay, type Replay } from './replay.ts';
import { DisplayMsg, ImageType, SurfaceFmt } from '../../../src/spice/proto/constants.ts';
import type { RgbaSurface } from '../../../src/spice/index.ts';

export interface R {
  l: number;
  t: number;
  r: number;
  b: number;
}

export class Body {
  private _bytes: number[] = [];
  private _pending: { at: number; build: (b: Body) => void }[] = [];

  u8(v: number): this {
    this._bytes.push(v & 255);
    return this;
  }
  u16(v: number): this {
    return this.u8(v).u8(v >> 8);
  }
  u32(v: number): this {
    return this.u16(v & 0xffff).u16(v >>> 16);
  }
  i32(v: number): this {
    return this.u32(v >>> 0);
  }
  u64(v: number | bigint): this {
    const b = BigInt(v);
    return this.u32(Number(b & 0xffffffffn)).u32(Number(b >> 32n));
  }
  bytes(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this._bytes.push(b[i]! & 255);
    return this;
  }
  /** spice.proto Rect {top, left, bottom, right}. */
  rect(x: R): this {
    return this.i32(x.t).i32(x.l).i32(x.b).i32(x.r);
  }
  /** A pointer whose target `build` writes; null = NULL pointer. */
  ptr(build: ((b: Body) => void) | null): this {
    const at = this._bytes.length;
    this.u32(0);
    if (build) this._pending.push({ at, build });
    return this;
  }
  finish(): Uint8Array {
    // Targets are appended in order; a target may itself hold pointers (resolved in turn).
    while (this._pending.length) {
      const { at, build } = this._pending.shift()!;
      const off = this._bytes.length;
      this._bytes[at] = off & 255;
      this._bytes[at + 1] = (off >> 8) & 255;
      this._bytes[at + 2] = (off >> 16) & 255;
      this._bytes[at + 3] = (off >>> 24) & 255;
      build(this);
    }
    return Uint8Array.from(this._bytes);
  }
}

export const rect = (l: number, t: number, r: number, b: number): R => ({ l, t, r, b });

/** DisplayBase {surface_id, box, clip}. */
export function base(b: Body, surfaceId: number, box: R, clip: R[] | null = null): Body {
  b.u32(surfaceId).rect(box);
  if (!clip) return b.u8(0);
  b.u8(1).u32(clip.length);
  for (const c of clip) b.rect(c);
  return b;
}

export interface Pic {
  width: number;
  height: number;
  /** RGBA, top-down. */
  rgba: Uint8Array;
}

/** Image descriptor + 32BIT (or RGBA) top-down BITMAP of `pic`. */
export function bitmapImage(
  pic: Pic,
  opts: { id?: number; cacheMe?: boolean; alpha?: boolean; bottomUp?: boolean } = {},
): (b: Body) => void {
  return (b) => {
    b.u64(opts.id ?? 0).u8(ImageType.BITMAP).u8(opts.cacheMe ? 1 : 0).u32(pic.width).u32(pic.height);
    b.u8(opts.alpha ? 9 : 8).u8(opts.bottomUp ? 0 : 4).u32(pic.width).u32(pic.height).u32(pic.width * 4).u32(0);
    for (let row = 0; row < pic.height; row++) {
      const y = opts.bottomUp ? pic.height - 1 - row : row;
      for (let x = 0; x < pic.width; x++) {
        const o = (y * pic.width + x) * 4;
        b.u8(pic.rgba[o + 2]!).u8(pic.rgba[o + 1]!).u8(pic.rgba[o]!).u8(pic.rgba[o + 3]!);
      }
    }
  };
}

/** A 1-bit BITMAP (mask), bits[y][x], packed 1BIT_BE or 1BIT_LE. */
export function maskImage(
  bits: number[][],
  opts: { le?: boolean; bottomUp?: boolean; id?: number; cacheMe?: boolean } = {},
): (b: Body) => void {
  const h = bits.length;
  const w = bits[0]!.length;
  const stride = (w + 7) >> 3;
  return (b) => {
    b.u64(opts.id ?? 0).u8(ImageType.BITMAP).u8(opts.cacheMe ? 1 : 0).u32(w).u32(h);
    b.u8(opts.le ? 1 : 2).u8(opts.bottomUp ? 0 : 4).u32(w).u32(h).u32(stride).u32(0);
    for (let row = 0; row < h; row++) {
      const y = opts.bottomUp ? h - 1 - row : row;
      const bytes = new Array<number>(stride).fill(0);
      for (let x = 0; x < w; x++) if (bits[y]![x]) bytes[x >> 3]! |= opts.le ? 1 << (x & 7) : 0x80 >> (x & 7);
      b.bytes(bytes);
    }
  };
}

export function fromCache(id: number, w: number, h: number): (b: Body) => void {
  return (b) => b.u64(id).u8(ImageType.FROM_CACHE).u8(0).u32(w).u32(h);
}

export function surfaceImage(surfaceId: number, w: number, h: number): (b: Body) => void {
  return (b) => b.u64(0).u8(ImageType.SURFACE).u8(0).u32(w).u32(h).u32(surfaceId);
}

export function surfaceCreate(
  id: number,
  w: number,
  h: number,
  format: number = SurfaceFmt['32_xRGB'],
  primary = true,
): Uint8Array {
  return miniMessage(
    DisplayMsg.SURFACE_CREATE,
    new Body()
      .u32(id)
      .u32(w)
      .u32(h)
      .u32(format)
      .u32(primary ? 1 : 0)
      .finish(),
  );
}

export function msg(type: number, body: Body): Uint8Array {
  return miniMessage(type, body.finish());
}

/** Replays messages and returns the replay; throws the channel's error if there was one. */
export async function play(...msgs: Uint8Array[]): Promise<Replay> {
  const bytes = new Uint8Array(msgs.reduce((n, m) => n + m.length, 0));
  let o = 0;
  for (const m of msgs) {
    bytes.set(m, o);
    o += m.length;
  }
  const r = await replayDisplay(bytes);
  if (r.error) throw r.error;
  return r;
}

export function surfaceOf(r: Replay, id = 0): RgbaSurface {
  return r.display.surfaces.get(id)!.surface as RgbaSurface;
}

/** A deterministic picture: every pixel different, alpha 255. */
export function testPic(width: number, height: number, seed = 1): Pic {
  const rgba = new Uint8Array(width * height * 4);
  let s = seed;
  for (let i = 0; i < width * height; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    rgba[i * 4] = s >>> 24;
    rgba[i * 4 + 1] = (s >>> 16) & 255;
    rgba[i * 4 + 2] = (s >>> 8) & 255;
    rgba[i * 4 + 3] = 255;
  }
  return { width, height, rgba };
}

/** A pixel of a surface or picture as [r, g, b, a]. */
export function px(p: { width: number; data?: Uint8Array; rgba?: Uint8Array }, x: number, y: number): number[] {
  const d = p.data ?? p.rgba!;
  const o = (y * p.width + x) * 4;
  return [d[o]!, d[o + 1]!, d[o + 2]!, d[o + 3]!];
}
