// Display channel (type 2): surfaces and the drawing commands QEMU sends. spice.proto
// `channel DisplayChannel`; what QEMU 7.2 actually sends is in spice-protocol.md §3.6 (std VGA and
// virtio-gpu: SURFACE_CREATE + DRAW_COPY of 32BIT bitmaps or their LZ/GLZ/QUIC-compressed forms).
import { SpiceChannel, type ChannelOptions } from '../channel.ts';
import { hasCap } from '../caps.ts';
import { Emitter, type Event } from '../emitter.ts';
import {
  BrushType, DisplayCap, DisplayMsg, DisplayMsgc, Ropd, SurfaceFlags, VideoCodec,
} from '../proto/constants.ts';
import { SpiceProtocolError } from '../proto/errors.ts';
import type { Reader } from '../proto/reader.ts';
import { Writer } from '../proto/writer.ts';
import type { ByteQueue, Transport } from '../transport.ts';
import { intersect, type Rect, type Surface } from '../surface.ts';
import { readImage, type ImageCaches, type ImageContext } from './display-images.ts';
import { StreamSet, type StreamStats } from './display-streams.ts';
import { readClip, readRect, scaleNearest } from './display-wire.ts';

/**
 * LZ4 is only sent when also asked for with PREFERRED_COMPRESSION (server/dcc.cpp dcc_compress_image).
 * Video: MULTI_CODEC + CODEC_MJPEG (the only decoder here), SIZED_STREAM, STREAM_REPORT (the server
 * adapts the bit rate to the reports), PREF_VIDEO_CODEC_TYPE.
 */
export const DISPLAY_CLIENT_CAPS = [
  DisplayCap.MONITORS_CONFIG, DisplayCap.PREF_COMPRESSION, DisplayCap.LZ4_COMPRESSION, DisplayCap.SIZED_STREAM,
  DisplayCap.STREAM_REPORT, DisplayCap.MULTI_CODEC, DisplayCap.CODEC_MJPEG, DisplayCap.PREF_VIDEO_CODEC_TYPE,
];

/** Video codecs in order of preference (PREFERRED_VIDEO_CODEC_TYPE). */
const PREFERRED_VIDEO_CODECS = [VideoCodec.MJPEG];

export interface SurfaceInfo {
  id: number;
  width: number;
  height: number;
  format: number; // SurfaceFmt
  primary: boolean;
}

export interface InvalidateEvent {
  surfaceId: number;
  rect: Rect;
}

export interface MonitorHead {
  monitorId: number;
  surfaceId: number;
  width: number;
  height: number;
  x: number;
  y: number;
}

export interface DisplayOptions {
  caches: ImageCaches;
  createSurface: (info: SurfaceInfo) => Surface;
  /** DISPLAY_INIT pixmap_cache_size, in pixels. */
  pixmapCacheSize: number;
  /** DISPLAY_INIT glz_dictionary_window_size in pixels; 0 makes the server send LZ instead of GLZ. */
  glzWindowSize: number;
  /** Sent as PREFERRED_COMPRESSION (ImageCompression) when the server has the cap. */
  preferredCompression?: number;
  maxImagePixels: number;
  /** Server channel caps from the link reply. */
  serverCaps: number[];
  /** The server's multimedia clock as the session estimates it (ms; stream reports). */
  mmTime: () => number;
}

export interface DisplayStats {
  /** Decoded images by type name (bitmap, lz_rgb, quic, glz_rgb, from_cache …). */
  decoded: Record<string, number>;
  /** Pixels decoded, by the same names (throughput figures). */
  decodedPixels: Record<string, number>;
  /** Drawing commands received but not rendered (unsupported rop, mask, brush …). */
  skipped: Record<string, number>;
  /** Video streams; their frames are also counted in `decoded` by codec ("mjpeg"). */
  streams: StreamStats;
}

export class DisplayChannel extends SpiceChannel {
  private readonly _onSurfaceCreated = new Emitter<SurfaceInfo>();
  readonly onSurfaceCreated: Event<SurfaceInfo> = this._onSurfaceCreated.event;
  private readonly _onSurfaceDestroyed = new Emitter<number>();
  readonly onSurfaceDestroyed: Event<number> = this._onSurfaceDestroyed.event;
  private readonly _onInvalidate = new Emitter<InvalidateEvent>();
  /** A rectangle of a surface changed (for renderers that present surfaces). */
  readonly onInvalidate: Event<InvalidateEvent> = this._onInvalidate.event;
  private readonly _onMark = new Emitter<void>();
  /** MARK: the first complete frame has been sent. */
  readonly onMark: Event<void> = this._onMark.event;
  private readonly _onMonitorsConfig = new Emitter<MonitorHead[]>();
  readonly onMonitorsConfig: Event<MonitorHead[]> = this._onMonitorsConfig.event;

  readonly surfaces = new Map<number, { info: SurfaceInfo; surface: Surface }>();
  readonly displayStats: DisplayStats;
  /** Video streams currently playing, by stream id. */
  readonly streams: StreamSet;
  private readonly _images: ImageContext;

  constructor(type: number, id: number, transport: Transport, queue: ByteQueue, options: ChannelOptions, private readonly _opts: DisplayOptions) {
    super(type, id, transport, queue, options);
    const decoded: Record<string, number> = {};
    const decodedPixels: Record<string, number> = {};
    this.streams = new StreamSet({
      draw: (surfaceId, box, clip, img) => this._paint({ surfaceId, box, clip }, (s, rect) => s.putImage(img, rect.left - box.left, rect.top - box.top, rect)),
      send: (t, body) => this.send(t, body),
      mmTime: _opts.mmTime,
      now: () => Date.now(),
      maxImagePixels: _opts.maxImagePixels,
      decoded,
      decodedPixels,
      serverReports: hasCap(_opts.serverCaps, DisplayCap.STREAM_REPORT),
    });
    this.displayStats = { decoded, decodedPixels, skipped: {}, streams: this.streams.stats };
    this._images = {
      caches: _opts.caches,
      maxImagePixels: _opts.maxImagePixels,
      surface: (id) => this.surfaces.get(id)?.surface,
      decoded,
      decodedPixels,
    };
  }

  get primary(): { info: SurfaceInfo; surface: Surface } | undefined {
    for (const s of this.surfaces.values()) if (s.info.primary) return s;
    return undefined;
  }

  /**
   * Asks the server to compress images with `mode` (ImageCompression) from now on, overriding its
   * image-compression setting for this client (server/dcc.cpp dcc_handle_preferred_compression). LZ4 is
   * honoured because the LZ4 cap is announced. Returns false if the server lacks PREF_COMPRESSION.
   */
  setPreferredCompression(mode: number): boolean {
    if (!hasCap(this._opts.serverCaps, DisplayCap.PREF_COMPRESSION)) return false;
    this.send(DisplayMsgc.PREFERRED_COMPRESSION, new Writer(1).u8(mode).finish());
    return true;
  }

  protected override onLinked(): void {
    // DISPLAY_INIT {pixmap_cache_id u8, pixmap_cache_size i64, glz_dictionary_id u8, glz_window i32}
    const w = new Writer(14).u8(1).i64(this._opts.pixmapCacheSize).u8(1).i32(this._opts.glzWindowSize);
    this.send(DisplayMsgc.INIT, w.finish());
    if (this._opts.preferredCompression !== undefined) this.setPreferredCompression(this._opts.preferredCompression);
    if (hasCap(this._opts.serverCaps, DisplayCap.PREF_VIDEO_CODEC_TYPE)) {
      const w = new Writer(1 + PREFERRED_VIDEO_CODECS.length).u8(PREFERRED_VIDEO_CODECS.length);
      for (const c of PREFERRED_VIDEO_CODECS) w.u8(c);
      this.send(DisplayMsgc.PREFERRED_VIDEO_CODEC_TYPE, w.finish());
    }
  }

  protected async handleMessage(type: number, body: Uint8Array): Promise<void> {
    const r = this.reader(body, type);
    switch (type) {
      case DisplayMsg.SURFACE_CREATE: {
        const info: SurfaceInfo = { id: r.u32(), width: r.u32(), height: r.u32(), format: r.u32(), primary: false };
        info.primary = (r.u32() & SurfaceFlags.PRIMARY) !== 0;
        if (info.width * info.height > this._opts.maxImagePixels || info.width === 0 || info.height === 0) {
          throw new SpiceProtocolError(`surface ${info.width}×${info.height} out of range`);
        }
        this.surfaces.set(info.id, { info, surface: this._opts.createSurface(info) });
        this._onSurfaceCreated.fire(info);
        return;
      }
      case DisplayMsg.SURFACE_DESTROY: {
        const id = r.u32();
        this.surfaces.delete(id);
        this._onSurfaceDestroyed.fire(id);
        return;
      }
      case DisplayMsg.DRAW_COPY:
        return this._drawCopy(r);
      case DisplayMsg.DRAW_FILL:
        return this._drawFill(r);
      case DisplayMsg.COPY_BITS: {
        const base = this._base(r);
        const sx = r.i32();
        const sy = r.i32();
        this._paint(base, (s, rect) => s.copyBits(sx + rect.left - base.box.left, sy + rect.top - base.box.top, rect));
        return;
      }
      case DisplayMsg.MARK:
        this._onMark.fire();
        return;
      case DisplayMsg.INVAL_LIST: {
        const n = r.count(r.u16(), 9);
        for (let i = 0; i < n; i++) {
          r.u8(); // resource type: PIXMAP is the only one (spice.proto resource_type)
          this._opts.caches.pixmaps.delete(r.u64());
        }
        return;
      }
      case DisplayMsg.INVAL_ALL_PIXMAPS:
        // The wait list makes sure GLZ-related messages on sibling channels were handled first.
        await this.waitForChannels(r);
        this._opts.caches.pixmaps.clear();
        return;
      case DisplayMsg.INVAL_PALETTE:
        this._opts.caches.palettes.delete(r.u64());
        return;
      case DisplayMsg.INVAL_ALL_PALETTES:
        this._opts.caches.palettes.clear();
        return;
      case DisplayMsg.MONITORS_CONFIG: {
        const n = r.u16();
        r.u16(); // max_allowed
        r.count(n, 28);
        const heads = Array.from({ length: n }, () => {
          const h = { monitorId: r.u32(), surfaceId: r.u32(), width: r.u32(), height: r.u32(), x: r.u32(), y: r.u32() };
          r.u32(); // flags
          return h;
        });
        this._onMonitorsConfig.fire(heads);
        return;
      }
      default:
        if (this.streams.handle(type, r)) return;
        // MODE/RESET (legacy), the GDI ops that only legacy QXL guest drivers emit, GL scanout (unix
        // fd passing, local only).
        this.ignore(type);
    }
  }

  /** DisplayBase {surface_id u32, box Rect, clip Clip}. */
  private _base(r: Reader): { surfaceId: number; box: Rect; clip: Rect[] | null } {
    const surfaceId = r.u32();
    const box = readRect(r);
    return { surfaceId, box, clip: readClip(r) };
  }

  /** Applies `op` to every piece of box ∩ clip rects, then reports the box as invalidated. */
  private _paint(base: { surfaceId: number; box: Rect; clip: Rect[] | null }, op: (s: Surface, rect: Rect) => void): void {
    const target = this.surfaces.get(base.surfaceId);
    if (!target) throw new SpiceProtocolError(`draw on unknown surface ${base.surfaceId}`);
    const bounds = { left: 0, top: 0, right: target.info.width, bottom: target.info.height };
    const box = intersect(base.box, bounds);
    if (!box) return;
    for (const c of base.clip ?? [box]) {
      const piece = intersect(box, c);
      if (piece) op(target.surface, piece);
    }
    this._onInvalidate.fire({ surfaceId: base.surfaceId, rect: box });
  }

  private _skip(what: string): void {
    this.displayStats.skipped[what] = (this.displayStats.skipped[what] ?? 0) + 1;
  }

  /** QMask {flags u8, pos Point, bitmap Image* u32}; true if a mask image is present. */
  private _hasMask(r: Reader): boolean {
    r.u8();
    r.i32();
    r.i32();
    return r.u32() !== 0;
  }

  private _drawCopy(r: Reader): void {
    const base = this._base(r);
    const imgPtr = r.u32();
    const src = readRect(r);
    const rop = r.u16();
    r.u8(); // scale_mode: only used when src_area and box differ in size
    const masked = this._hasMask(r);
    const img = readImage(r.at(0), imgPtr, this._images); // decode even if skipped: caches must stay in sync
    if (rop !== Ropd.OP_PUT || masked) return this._skip(masked ? 'DRAW_COPY mask' : `DRAW_COPY rop ${rop}`);
    const bw = base.box.right - base.box.left;
    const bh = base.box.bottom - base.box.top;
    const sw = src.right - src.left;
    const sh = src.bottom - src.top;
    if (bw <= 0 || bh <= 0) return;
    if (bw * bh > this._opts.maxImagePixels) throw new SpiceProtocolError(`DRAW_COPY box ${bw}×${bh} out of range`);
    const source = sw === bw && sh === bh ? img : scaleNearest(img, src, bw, bh);
    const ox = source === img ? src.left : 0;
    const oy = source === img ? src.top : 0;
    this._paint(base, (s, rect) => s.putImage(source, ox + rect.left - base.box.left, oy + rect.top - base.box.top, rect));
  }

  private _drawFill(r: Reader): void {
    const base = this._base(r);
    const brushType = r.u8();
    let color = 0;
    if (brushType === BrushType.SOLID) color = r.u32();
    else if (brushType === BrushType.PATTERN) {
      r.u32(); // pattern image pointer
      r.i32();
      r.i32();
    }
    const rop = r.u16();
    const masked = this._hasMask(r);
    if (brushType !== BrushType.SOLID || rop !== Ropd.OP_PUT || masked) return this._skip('DRAW_FILL');
    this._paint(base, (s, rect) => s.fill(rect, color & 0xffffff));
  }

  protected override onClosed(): void {
    for (const e of [this._onSurfaceCreated, this._onSurfaceDestroyed, this._onInvalidate, this._onMonitorsConfig]) e.dispose();
    this._onMark.dispose();
  }
}
