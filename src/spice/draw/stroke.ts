// DRAW_STROKE: a path of lines and Bézier curves (28.4 fixed-point points) stroked with
// zero-width ("cosmetic") lines, as spice-common's canvas does (canvas_base.c canvas_draw_stroke,
// lines.c, the X server's mi code):
// - each point is rounded to an integer pixel (fix_to_int: the fraction rounds up above one half);
// - a Bézier is flattened by halving until both control points lie within half a pixel of the
//   chord (subdivide_bezier, integer arithmetic on 28.4 values);
// - each polyline is drawn with miZeroLine: Bresenham with the X server's default octant bias
//   (ties step along the minor axis only in octants 1, 6, 7 and 8), every segment without its end
//   point and the polyline's last point not drawn (CapNotLast, "win32 cosmetic lines are endpoint
//   exclusive"). Pixels where segments cross are combined twice, as the X code does.
// Styled (dashed) lines are drawn on/off along the same pixels, one dash unit per pixel of the major
// axis. The canvas hands dashes to miWideDash with a width of 1, which rasterises polygons instead;
// that path is approximated here (no guest seen so far sends styled lines: xf86-video-qxl never
// strokes, the Windows XPDM driver sends solid cosmetic lines).
import { SpiceProtocolError } from '../proto/errors.ts';
import type { Rect } from '../surface.ts';

/** spice.proto `flags8 path_flags`. */
export const PathFlags = { BEGIN: 1, END: 2, CLOSE: 8, BEZIER: 16 } as const;
/** spice.proto `flags8 line_flags`. */
export const LineFlags = { START_WITH_GAP: 4, STYLED: 8 } as const;

export interface PathSegment {
  flags: number;
  /** x0, y0, x1, y1 … in 28.4 fixed point. */
  points: Int32Array;
}

export interface Point {
  x: number;
  y: number;
}

/** At most this many points after flattening, and this many pixel visits, per stroke. */
const MAX_POINTS = 1 << 20;
const MAX_VISITS = 1 << 26;
const MAX_BEZIER_DEPTH = 16; // 2^16 chords: far beyond what any on-screen curve needs

/** canvas_base.c fix_to_int. */
export function fixToInt(v: number): number {
  const frac = v & 15;
  return (v >> 4) + (frac > 8 ? 1 : 0);
}

function shr(v: bigint, n: bigint): bigint {
  return v >> n; // BigInt >> floors, like >> on int64 in C
}

/** Appends the flattened curve p0 → p3 (28.4 values), end points only, as integer pixels. */
function flattenBezier(out: Point[], p: bigint[], depth: number): void {
  const [x0, y0, x1, y1, x2, y2, x3, y3] = p as [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];
  const dot = (ax: bigint, ay: bigint, bx: bigint, by: bigint): bigint => shr(ax * bx + ay * by, 4n);
  const a2 = dot(x1 - x0, y1 - y0, x1 - x0, y1 - y0);
  const b2 = dot(x3 - x0, y3 - y0, x3 - x0, y3 - y0);
  const c2 = dot(x2 - x3, y2 - y3, x2 - x3, y2 - y3);
  const ab = dot(x1 - x0, y1 - y0, x3 - x0, y3 - y0);
  const cb = dot(x2 - x3, y2 - y3, x0 - x3, y0 - y3);
  const h1 = shr(a2 * b2 - ab * ab, 3n);
  const h2 = shr(c2 * b2 - cb * cb, 3n);
  if ((h1 < b2 && h2 < b2) || depth >= MAX_BEZIER_DEPTH) {
    if (out.length >= MAX_POINTS) throw new SpiceProtocolError('DRAW_STROKE: path too long');
    out.push({ x: fixToInt(Number(x3)), y: fixToInt(Number(y3)) });
    return;
  }
  const half = (a: bigint, b: bigint): bigint => (a + b) / 2n; // C division truncates, as BigInt's does
  const x01 = half(x0, x1), y01 = half(y0, y1);
  const x12 = half(x1, x2), y12 = half(y1, y2);
  const x23 = half(x2, x3), y23 = half(y2, y3);
  const x012 = half(x01, x12), y012 = half(y01, y12);
  const x123 = half(x12, x23), y123 = half(y12, y23);
  const xm = half(x012, x123), ym = half(y012, y123);
  flattenBezier(out, [x0, y0, x01, y01, x012, y012, xm, ym], depth + 1);
  flattenBezier(out, [xm, ym, x123, y123, x23, y23, x3, y3], depth + 1);
}

/** The polylines of a path, in drawing order (canvas_draw_stroke's stroke_lines_* bookkeeping). */
export function pathPolylines(segments: PathSegment[]): Point[][] {
  const result: Point[][] = [];
  let lines: Point[] = [];
  let total = 0;
  const flush = (): void => {
    if (lines.length) result.push(lines);
    total += lines.length;
    if (total > MAX_POINTS) throw new SpiceProtocolError('DRAW_STROKE: path too long');
    lines = [];
  };
  for (const seg of segments) {
    const pts = seg.points;
    const n = pts.length >> 1;
    let i = 0;
    if (seg.flags & PathFlags.BEGIN && n > 0) {
      flush();
      lines.push({ x: fixToInt(pts[0]!), y: fixToInt(pts[1]!) });
      i = 1;
    }
    if (seg.flags & PathFlags.BEZIER) {
      // Three points per curve; the reference gives up on the whole stroke otherwise.
      if ((n - i) % 3 !== 0) break;
      for (; i + 2 < n; i += 3) {
        const last = lines[lines.length - 1];
        if (!last) throw new SpiceProtocolError('DRAW_STROKE: Bézier without a start point');
        const p = [
          last.x * 16,
          last.y * 16,
          pts[2 * i]!,
          pts[2 * i + 1]!,
          pts[2 * i + 2]!,
          pts[2 * i + 3]!,
          pts[2 * i + 4]!,
          pts[2 * i + 5]!,
        ];
        flattenBezier(lines, p.map((v) => BigInt(v)), 0);
      }
    } else {
      for (; i < n; i++) lines.push({ x: fixToInt(pts[2 * i]!), y: fixToInt(pts[2 * i + 1]!) });
    }
    if (lines.length > MAX_POINTS) throw new SpiceProtocolError('DRAW_STROKE: path too long');
    if (seg.flags & PathFlags.END) {
      if (seg.flags & PathFlags.CLOSE && lines.length) lines.push({ ...lines[0]! });
      flush();
    }
  }
  flush();
  return result;
}

// miZeroLine octants (lines.c): bit 4 XDECREASING, 2 YDECREASING, 1 YMAJOR; the default bias sets
// octants 2, 3, 4 and 5 (OCTANT2 = 1 << (YDECREASING|YMAJOR) …).
const X_DEC = 4;
const Y_DEC = 2;
const Y_MAJOR = 1;
const ZERO_LINE_BIAS =
  (1 << (Y_DEC | Y_MAJOR)) | (1 << (X_DEC | Y_DEC | Y_MAJOR)) | (1 << (X_DEC | Y_DEC)) | (1 << X_DEC);

/** Dash state along one polyline: element index, units left in it, on or off. */
interface Dash {
  list: number[];
  index: number;
  left: number;
  on: boolean;
}

/**
 * Dash list from the LineAttr style (28.4 values): fix_to_int of each, kept to 8 bits as the
 * reference's `unsigned char` dash array does; START_WITH_GAP rotates the list left by one and
 * starts the pattern its first element in. null: a solid line (also when every dash is 0).
 */
export function dashList(flags: number, style: Int32Array | null): { list: number[]; offset: number } | null {
  if (!(flags & LineFlags.STYLED) || !style || style.length === 0) return null;
  let list = [...style].map((v) => fixToInt(v) & 255);
  let offset = 0;
  if (flags & LineFlags.START_WITH_GAP) {
    list = [...list.slice(1), list[0]!];
    offset = list[0]!;
  }
  if (list.every((d) => d === 0)) return null;
  return { list, offset };
}

function startDash(d: { list: number[]; offset: number }): Dash {
  const s: Dash = { list: d.list, index: 0, left: d.list[0]!, on: true };
  stepDash(s, d.offset);
  return s;
}

function stepDash(s: Dash, n: number): void {
  const period = s.list.reduce((a, b) => a + b, 0) * 2;
  n %= period; // two rounds make a period whatever the parity of the list
  while (n > 0 || s.left === 0) {
    if (s.left === 0) {
      s.index = (s.index + 1) % s.list.length;
      s.left = s.list[s.index]!;
      s.on = !s.on;
      continue;
    }
    const k = Math.min(n, s.left);
    s.left -= k;
    n -= k;
  }
}

/**
 * Calls `plot(x, y)` for every pixel of the stroke inside `clip`, in drawing order. Work is bounded
 * by the clip rectangle, not by the length of the lines.
 */
export function strokePixels(
  polylines: Point[][],
  clip: Rect,
  dash: { list: number[]; offset: number } | null,
  plot: (x: number, y: number) => void,
): void {
  let visits = 0;
  for (const line of polylines) {
    const ds = dash ? startDash(dash) : null;
    for (let i = 0; i + 1 < line.length; i++) {
      const a = line[i]!;
      const b = line[i + 1]!;
      visits += segment(a.x, a.y, b.x, b.y, clip, ds, plot);
      if (visits > MAX_VISITS) throw new SpiceProtocolError('DRAW_STROKE: too many pixels');
    }
  }
}

/** One miZeroLine segment without its end point; returns the number of steps examined. */
function segment(
  x1: number,
  y1: number,
  x2: number,
  y2: number,
  clip: Rect,
  ds: Dash | null,
  plot: (x: number, y: number) => void,
): number {
  const adx = Math.abs(x2 - x1);
  const ady = Math.abs(y2 - y1);
  const sx = x2 < x1 ? -1 : 1;
  const sy = y2 < y1 ? -1 : 1;
  let octant = (x2 < x1 ? X_DEC : 0) | (y2 < y1 ? Y_DEC : 0);
  const xMajor = adx > ady;
  if (!xMajor) octant |= Y_MAJOR;
  const bias = (ZERO_LINE_BIAS >> octant) & 1;
  const len = xMajor ? adx : ady; // pixels drawn: the end point is not
  if (len === 0) return 0;
  const major = xMajor ? adx : ady;
  const minor = xMajor ? ady : adx;
  // Minor-axis steps taken before pixel k: ⌊(2k·minor − major − bias) / (2·major)⌋ + 1 — the
  // closed form of Bresenham's error term e = −major − bias, e += 2·minor, step when e ≥ 0.
  const exact = 2 * len * minor < 2 ** 52;
  const minorAt = exact
    ? (k: number): number => Math.floor((2 * k * minor - major - bias) / (2 * major)) + 1
    : (k: number): number => {
        const n = 2n * BigInt(k) * BigInt(minor) - BigInt(major + bias);
        const d = 2n * BigInt(major);
        return Number(n >= 0n ? n / d : -((-n + d - 1n) / d)) + 1;
      };
  // Range of k whose major coordinate lies inside the clip.
  const m0 = xMajor ? x1 : y1;
  const s = xMajor ? sx : sy;
  const lo = xMajor ? clip.left : clip.top;
  const hi = (xMajor ? clip.right : clip.bottom) - 1;
  let kFrom = s > 0 ? lo - m0 : m0 - hi;
  let kTo = s > 0 ? hi - m0 : m0 - lo;
  kFrom = Math.max(0, kFrom);
  kTo = Math.min(len - 1, kTo);
  if (ds) {
    if (kFrom > kTo) {
      stepDash(ds, len);
      return 0;
    }
    stepDash(ds, kFrom);
  }
  if (kFrom > kTo) return 0;
  for (let k = kFrom; k <= kTo; k++) {
    const x = xMajor ? x1 + sx * k : x1 + sx * minorAt(k);
    const y = xMajor ? y1 + sy * minorAt(k) : y1 + sy * k;
    const on = !ds || ds.on;
    if (on && x >= clip.left && x < clip.right && y >= clip.top && y < clip.bottom) plot(x, y);
    if (ds) stepDash(ds, 1);
  }
  if (ds) stepDash(ds, len - 1 - kTo);
  return kTo - kFrom + 1;
}
