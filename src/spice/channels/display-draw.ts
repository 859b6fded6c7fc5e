// The drawing commands of the display channel (spice.proto DisplayChannel copy_bits, draw_fill …
// draw_alpha_blend): parsing and dispatch only; the pixel arithmetic is in ../draw/. Semantics follow
// spice-common's software canvas (canvas_base.c, sw_canvas.c), which is also what spice-server
// renders into the guest's framebuffer, so a client drawing this way matches QEMU's screendump.
//
// Every command first decodes all its images (source, pattern, mask): images flagged CACHE_ME must
// reach the pixmap cache even when nothing ends up drawn. Then it computes new pixels for the
// drawable area from a copy of the destination and writes back the clip pieces (draw/region.ts).
// The `effect` field of a QXL drawable (QXL_EFFECT_*) is a hint from the guest to spice-server's
// own region bookkeeping; spice.proto does not carry it to clients.
import { BrushType, DisplayMsg, Ropd, nameOf } from '../proto/constants.ts';
import { SpiceProtocolError } from '../proto/errors.ts';
import type { Reader } from '../proto/reader.ts';
import { intersect, type Rect, type Surface } from '../surface.ts';
import { blendOver, colorKey } from '../draw/blend.ts';
import { brushSampler, brushWords, type Brush } from '../draw/brush.ts';
import { maskKeep, MASK_INVERS, type Mask } from '../draw/mask.ts';
import { brushColor, pixelFormat, wordsOf } from '../draw/pixel.ts';
import {
  drawArea, offsetRect, readArea, rectHeight, rectWidth, restrictArea, updateArea, writeArea, type DrawArea,
} from '../draw/region.ts';
import { applyRop2, Rop2, rop2, rop3, ropFromDescriptor } from '../draw/rop.ts';
import { axisForCopy, axisForRop3, sampleScaled, ScaleMode, type Axis } from '../draw/scale.ts';
import type { PixelSource } from '../draw/source.ts';
import { dashList, pathPolylines, strokePixels } from '../draw/stroke.ts';
import { drawGlyphs, glyphBounds, glyphCoverage } from '../draw/text.ts';
import { readImage, readMaskImage, readSource, type ImageContext } from './display-images.ts';
import {
  readBrush,
  readClip,
  readLineAttr,
  readMask,
  readPath,
  readRect,
  readString,
  type WireBrush,
  type WireMask,
} from './display-wire.ts';

export interface DrawTarget {
  surface: Surface;
  /** SurfaceFmt of the surface. */
  format: number;
}

export interface DrawHost {
  target(surfaceId: number): DrawTarget | undefined;
  images: ImageContext;
  /** Commands handled, by message name ("DRAW_FILL" …). */
  drawn: Record<string, number>;
  /** Commands received and not rendered, by a reason ("DRAW_COMPOSITE" …). */
  skipped: Record<string, number>;
  invalidate(surfaceId: number, rect: Rect): void;
}

interface Base {
  surfaceId: number;
  box: Rect;
  clip: Rect[] | null;
}

/** Where a source pixel exists for each destination pixel, and its value. */
interface Sampled {
  words: Uint32Array;
  /** Destination pixels that have a source pixel (unscaled draws clip to the source); null = all. */
  valid: Rect | null;
}

const DRAW_TYPES = new Set<number>([
  DisplayMsg.COPY_BITS, DisplayMsg.DRAW_FILL, DisplayMsg.DRAW_OPAQUE, DisplayMsg.DRAW_COPY, DisplayMsg.DRAW_BLEND,
  DisplayMsg.DRAW_BLACKNESS, DisplayMsg.DRAW_WHITENESS, DisplayMsg.DRAW_INVERS, DisplayMsg.DRAW_ROP3,
  DisplayMsg.DRAW_STROKE, DisplayMsg.DRAW_TEXT, DisplayMsg.DRAW_TRANSPARENT, DisplayMsg.DRAW_ALPHA_BLEND,
]);

export class DrawCommands {
  constructor(private readonly _h: DrawHost) {}

  /** Handles a drawing command; false if `type` is not one. */
  handle(type: number, r: Reader): boolean {
    if (!DRAW_TYPES.has(type)) return false;
    const base = this._base(r);
    const t = this._h.target(base.surfaceId);
    if (!t) throw new SpiceProtocolError(`draw on unknown surface ${base.surfaceId}`);
    const name = nameOf(DisplayMsg, type);
    const body = r.at(0);
    switch (type) {
      case DisplayMsg.COPY_BITS:
        this._copyBits(base, t, r.i32(), r.i32());
        break;
      case DisplayMsg.DRAW_FILL:
        this._fill(base, t, readBrush(r), r.u16(), readMask(r), body);
        break;
      case DisplayMsg.DRAW_COPY:
      case DisplayMsg.DRAW_BLEND: {
        // Blend is Copy under another name for the canvas: the rop descriptor says what to do.
        const src = this._source(body, r.u32());
        const area = readRect(r);
        const rop = r.u16();
        const scale = r.u8();
        const mask = this._mask(readMask(r), body);
        this._copy(base, t, src, area, ropFromDescriptor(rop, 'src-dest'), scale, mask);
        break;
      }
      case DisplayMsg.DRAW_OPAQUE: {
        const src = this._source(body, r.u32());
        const area = readRect(r);
        const brush = this._brush(readBrush(r), body, t);
        const rop = r.u16();
        const scale = r.u8();
        this._opaque(
          base,
          t,
          src,
          area,
          brush,
          ropFromDescriptor(rop, 'brush-src'),
          scale,
          this._mask(readMask(r), body),
        );
        break;
      }
      case DisplayMsg.DRAW_BLACKNESS:
      case DisplayMsg.DRAW_WHITENESS:
      case DisplayMsg.DRAW_INVERS: {
        const mask = this._mask(readMask(r), body);
        const op =
          type === DisplayMsg.DRAW_BLACKNESS ? Rop2.CLEAR : type === DisplayMsg.DRAW_WHITENESS ? Rop2.SET : Rop2.INVERT;
        this._brushOp(base, t, { type: BrushType.NONE }, op, mask);
        break;
      }
      case DisplayMsg.DRAW_ROP3: {
        const src = this._source(body, r.u32());
        const area = readRect(r);
        const brush = this._brush(readBrush(r), body, t);
        const code = r.u8();
        const scale = r.u8();
        this._rop3(base, t, src, area, brush, code, scale, this._mask(readMask(r), body));
        break;
      }
      case DisplayMsg.DRAW_STROKE: {
        const path = readPath(body, r.u32());
        const attr = readLineAttr(r, body);
        const brush = this._brush(readBrush(r), body, t);
        const fore = r.u16();
        r.u16(); // back_mode: only for double-dashed lines, which the reference does not draw
        this._stroke(base, t, path, attr, brush, fore);
        break;
      }
      case DisplayMsg.DRAW_TEXT: {
        const str = readString(body, r.u32());
        const backArea = readRect(r);
        const fore = this._brush(readBrush(r), body, t);
        const back = this._brush(readBrush(r), body, t);
        const foreMode = r.u16();
        r.u16(); // back_mode: the back area is always filled with COPY
        this._text(base, t, str, backArea, fore, back, foreMode);
        break;
      }
      case DisplayMsg.DRAW_TRANSPARENT: {
        const src = this._source(body, r.u32());
        const area = readRect(r);
        r.u32(); // src_color: the key in the source's own format; true_color is the one used
        this._transparent(base, t, src, area, r.u32());
        break;
      }
      case DisplayMsg.DRAW_ALPHA_BLEND: {
        r.u8(); // alpha_flags DEST_HAS_ALPHA / SRC_SURFACE_HAS_ALPHA: alpha is kept per surface format here
        const alpha = r.u8();
        const src = this._source(body, r.u32());
        this._alphaBlend(base, t, src, readRect(r), alpha);
        break;
      }
    }
    this._h.drawn[name] = (this._h.drawn[name] ?? 0) + 1;
    return true;
  }

  /** DisplayBase {surface_id u32, box Rect, clip Clip}. */
  private _base(r: Reader): Base {
    const surfaceId = r.u32();
    const box = readRect(r);
    return { surfaceId, box, clip: readClip(r) };
  }

  private _source(body: Reader, ptr: number): PixelSource {
    return readSource(body, ptr, this._h.images);
  }

  private _brush(b: WireBrush, body: Reader, t: DrawTarget): Brush {
    if (b.type === BrushType.SOLID) return { type: b.type, color: brushColor(b.color, pixelFormat(t.format)) };
    if (b.type === BrushType.PATTERN)
      return { type: b.type, pattern: readImage(body, b.imagePtr, this._h.images), x: b.x, y: b.y };
    return b;
  }

  private _mask(m: WireMask, body: Reader): Mask | null {
    if (!m.imagePtr) return null;
    const bits = readMaskImage(body, m.imagePtr, this._h.images);
    return { ...bits, invert: (m.flags & MASK_INVERS) !== 0, x: m.x, y: m.y };
  }

  private _area(base: Base, t: DrawTarget): DrawArea | null {
    return drawArea(base.box, base.clip, t.surface.width, t.surface.height);
  }

  private _done(base: Base, area: DrawArea): void {
    this._h.invalidate(base.surfaceId, area.rect);
  }

  /** Per pixel of `rect`: 1 where the command may draw (inside `valid` and the mask), or null for all. */
  private _keep(rect: Rect, box: Rect, valid: Rect | null, mask: Mask | null): Uint8Array | null {
    if (
      !mask &&
      (!valid ||
        (valid.left <= rect.left && valid.top <= rect.top && valid.right >= rect.right && valid.bottom >= rect.bottom))
    )
      return null;
    const keep = mask ? maskKeep(mask, rect, box) : new Uint8Array(rectWidth(rect) * rectHeight(rect)).fill(1);
    if (valid) {
      const w = rectWidth(rect);
      for (let y = rect.top; y < rect.bottom; y++) {
        for (let x = rect.left; x < rect.right; x++) {
          if (x < valid.left || x >= valid.right || y < valid.top || y >= valid.bottom)
            keep[(y - rect.top) * w + (x - rect.left)] = 0;
        }
      }
    }
    return keep;
  }

  /**
   * Source pixels for the destination `rect`. Same size as the box: pixel (x, y) reads
   * src_area.left + x − box.left …, and only where the source exists. Otherwise scaled (draw/scale.ts).
   */
  private _sample(
    src: PixelSource,
    box: Rect,
    srcArea: Rect,
    rect: Rect,
    mode: number,
    rop3Scaling = false,
  ): Sampled | null {
    const bw = rectWidth(box);
    const bh = rectHeight(box);
    const sw = rectWidth(srcArea);
    const sh = rectHeight(srcArea);
    if (bw === sw && bh === sh) {
      const dx = box.left - srcArea.left;
      const dy = box.top - srcArea.top;
      const valid = intersect(rect, offsetRect({ left: 0, top: 0, right: src.width, bottom: src.height }, dx, dy));
      if (!valid) return null;
      return { words: wordsOf(src.read(offsetRect(rect, -dx, -dy))), valid };
    }
    const axes: [Axis, Axis] = rop3Scaling
      ? [axisForRop3(srcArea.left, sw, bw), axisForRop3(srcArea.top, sh, bh)]
      : [axisForCopy(srcArea.left, sw, bw), axisForCopy(srcArea.top, sh, bh)];
    const words = sampleScaled(
      src,
      axes[0],
      axes[1],
      rect.left - box.left,
      rect.top - box.top,
      rectWidth(rect),
      rectHeight(rect),
      mode,
    );
    return { words, valid: null };
  }

  private _copyBits(base: Base, t: DrawTarget, srcX: number, srcY: number): void {
    const dx = base.box.left - srcX;
    const dy = base.box.top - srcY;
    let area = this._area(base, t);
    if (area && (dx || dy))
      area = restrictArea(
        area,
        offsetRect({ left: 0, top: 0, right: t.surface.width, bottom: t.surface.height }, dx, dy),
      );
    if (!area || (!dx && !dy)) return;
    // Read the whole source first: pieces may overlap their own source.
    const src = t.surface.getImage(offsetRect(area.rect, -dx, -dy));
    for (const p of area.pieces ?? [area.rect])
      t.surface.putImage(src, p.left - area.rect.left, p.top - area.rect.top, p);
    this._done(base, area);
  }

  /** A brush with a binary rop through an optional mask: FILL, BLACKNESS, WHITENESS, INVERS. */
  private _brushOp(base: Base, t: DrawTarget, brush: Brush, rop: number, mask: Mask | null): void {
    const area = this._area(base, t);
    if (!area || rop === Rop2.NOOP) return;
    const fmt = pixelFormat(t.format);
    if (brush.type === BrushType.SOLID && rop === Rop2.COPY && !mask && !fmt.alpha && !fmt.depth16) {
      const rgb = brush.color & 0xffffff;
      for (const p of area.pieces ?? [area.rect]) t.surface.fill(p, rgb);
    } else {
      const keep = this._keep(area.rect, base.box, null, mask);
      updateArea(t.surface, area, fmt, (d) => applyRop2(rop, brushWords(brush, area.rect), d, keep));
    }
    this._done(base, area);
  }

  private _fill(base: Base, t: DrawTarget, wb: WireBrush, ropd: number, wm: WireMask, body: Reader): void {
    const brush = this._brush(wb, body, t);
    const mask = this._mask(wm, body);
    this._brushOp(base, t, brush, ropFromDescriptor(ropd, 'brush-dest'), mask);
  }

  private _copy(
    base: Base,
    t: DrawTarget,
    src: PixelSource,
    srcArea: Rect,
    rop: number,
    scale: number,
    mask: Mask | null,
  ): void {
    const area = this._area(base, t);
    if (!area || rop === Rop2.NOOP || rectWidth(base.box) <= 0 || rectHeight(base.box) <= 0) return;
    const fmt = pixelFormat(t.format);
    const same = rectWidth(base.box) === rectWidth(srcArea) && rectHeight(base.box) === rectHeight(srcArea);
    if (same && rop === Rop2.COPY && !mask && src.image && src.opaque && !fmt.alpha && !fmt.depth16) {
      // The common case (QEMU's and the qxl drivers' DRAW_COPY): straight from the decoded image.
      const clipped = restrictArea(
        area,
        offsetRect(
          { left: 0, top: 0, right: src.width, bottom: src.height },
          base.box.left - srcArea.left,
          base.box.top - srcArea.top,
        ),
      );
      if (!clipped) return;
      for (const p of clipped.pieces ?? [clipped.rect])
        t.surface.putImage(src.image, srcArea.left + p.left - base.box.left, srcArea.top + p.top - base.box.top, p);
      this._done(base, clipped);
      return;
    }
    const s = this._sample(src, base.box, srcArea, area.rect, scale);
    if (!s) return;
    const keep = this._keep(area.rect, base.box, s.valid, mask);
    updateArea(t.surface, area, fmt, (d) => applyRop2(rop, s.words, d, keep));
    this._done(base, area);
  }

  /** OPAQUE: the source is put (where it exists), then the brush is combined with it by the rop. */
  private _opaque(
    base: Base,
    t: DrawTarget,
    src: PixelSource,
    srcArea: Rect,
    brush: Brush,
    rop: number,
    scale: number,
    mask: Mask | null,
  ): void {
    const area = this._area(base, t);
    if (!area || rop === Rop2.NOOP) return;
    const s = this._sample(src, base.box, srcArea, area.rect, scale);
    const keepSrc = s ? this._keep(area.rect, base.box, s.valid, mask) : null;
    const keepBrush = this._keep(area.rect, base.box, null, mask);
    updateArea(t.surface, area, pixelFormat(t.format), (d) => {
      if (s) applyRop2(Rop2.COPY, s.words, d, keepSrc);
      applyRop2(rop, brushWords(brush, area.rect), d, keepBrush);
    });
    this._done(base, area);
  }

  private _rop3(
    base: Base,
    t: DrawTarget,
    src: PixelSource,
    srcArea: Rect,
    brush: Brush,
    code: number,
    scale: number,
    mask: Mask | null,
  ): void {
    const area = this._area(base, t);
    if (!area) return;
    const s = this._sample(src, base.box, srcArea, area.rect, scale, true);
    // Unscaled, the reference refuses a source smaller than its area (canvas_draw_rop3 "bad src bitmap size").
    const need = offsetRect(srcArea, base.box.left - srcArea.left, base.box.top - srcArea.top);
    if (
      !s ||
      (s.valid &&
        !covers(
          offsetRect(
            { left: 0, top: 0, right: src.width, bottom: src.height },
            base.box.left - srcArea.left,
            base.box.top - srcArea.top,
          ),
          need,
        ))
    ) {
      this._h.skipped['DRAW_ROP3 source smaller than its area'] =
        (this._h.skipped['DRAW_ROP3 source smaller than its area'] ?? 0) + 1;
      return;
    }
    const keep = this._keep(area.rect, base.box, s.valid, mask);
    const pat = brushWords(brush, area.rect);
    updateArea(t.surface, area, pixelFormat(t.format), (d) => {
      for (let i = 0; i < d.length; i++) {
        if (keep && !keep[i]) continue;
        d[i] = rop3(code, typeof pat === 'number' ? pat : pat[i]!, s.words[i]!, d[i]!);
      }
    });
    this._done(base, area);
  }

  private _transparent(base: Base, t: DrawTarget, src: PixelSource, srcArea: Rect, trueColor: number): void {
    const area = this._area(base, t);
    if (!area) return;
    const s = this._sample(src, base.box, srcArea, area.rect, ScaleMode.NEAREST);
    if (!s) return;
    const clipped = s.valid ? restrictArea(area, s.valid) : area;
    if (!clipped) return;
    const fmt = pixelFormat(t.format);
    const words = s.valid ? subRect(s.words, area.rect, clipped.rect) : s.words;
    updateArea(t.surface, clipped, fmt, (d) => colorKey(words, d, trueColor, fmt));
    this._done(base, clipped);
  }

  private _alphaBlend(base: Base, t: DrawTarget, src: PixelSource, srcArea: Rect, alpha: number): void {
    const area = this._area(base, t);
    if (!area || alpha === 0) return;
    // The canvas always scales alpha blends with NEAREST.
    const s = this._sample(src, base.box, srcArea, area.rect, ScaleMode.NEAREST);
    if (!s) return;
    const clipped = s.valid ? restrictArea(area, s.valid) : area;
    if (!clipped) return;
    const words = s.valid ? subRect(s.words, area.rect, clipped.rect) : s.words;
    updateArea(t.surface, clipped, pixelFormat(t.format), (d) => blendOver(words, d, alpha));
    this._done(base, clipped);
  }

  private _stroke(
    base: Base,
    t: DrawTarget,
    path: ReturnType<typeof readPath>,
    attr: { flags: number; style: Int32Array | null },
    brush: Brush,
    foreMode: number,
  ): void {
    const lines = pathPolylines(path);
    const area = this._area(base, t);
    if (!area) return;
    const rop = ropFromDescriptor(foreMode, 'brush-dest');
    const { img, words } = readArea(t.surface, area);
    const w = img.width;
    const brushAt = brushSampler(brush);
    strokePixels(lines, area.rect, dashList(attr.flags, attr.style), (x, y) => {
      const i = (y - area.rect.top) * w + (x - area.rect.left);
      words[i] = rop2(rop, brushAt(x, y), words[i]!);
    });
    writeArea(t.surface, area, words, pixelFormat(t.format));
    this._done(base, area);
  }

  private _text(
    base: Base,
    t: DrawTarget,
    str: ReturnType<typeof readString>,
    backArea: Rect,
    fore: Brush,
    back: Brush,
    foreMode: number,
  ): void {
    const area = this._area(base, t);
    if (!area) return;
    const fmt = pixelFormat(t.format);
    const hasBack = backArea.left < backArea.right && backArea.top < backArea.bottom;
    // The reference only knows OVER for glyphs; with a back area and another fore mode it draws nothing.
    if (hasBack && foreMode !== Ropd.OP_PUT) return;
    updateArea(t.surface, area, fmt, (d) => {
      if (hasBack) {
        const r = intersect(area.rect, backArea);
        if (r) {
          const keep = this._keep(area.rect, base.box, r, null);
          applyRop2(Rop2.COPY, brushWords(back, area.rect), d, keep);
        }
      }
      const bounds = glyphBounds(str.glyphs);
      if (!str.depth || !bounds) return;
      const cov = glyphCoverage(str.glyphs, str.depth, area.rect);
      drawGlyphs(d, cov, area.rect, fore, { x: bounds.left, y: bounds.top });
    });
    this._done(base, area);
  }
}

function covers(outer: Rect, inner: Rect): boolean {
  return (
    outer.left <= inner.left && outer.top <= inner.top && outer.right >= inner.right && outer.bottom >= inner.bottom
  );
}

/** The words of `inner` out of a buffer covering `outer`. */
function subRect(words: Uint32Array, outer: Rect, inner: Rect): Uint32Array {
  const ow = rectWidth(outer);
  const iw = rectWidth(inner);
  const out = new Uint32Array(iw * rectHeight(inner));
  for (let y = inner.top; y < inner.bottom; y++) {
    const s = (y - outer.top) * ow + (inner.left - outer.left);
    out.set(words.subarray(s, s + iw), (y - inner.top) * iw);
  }
  return out;
}
