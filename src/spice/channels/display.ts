// Display channel (type 2): surfaces and the drawing commands QEMU sends. spice.proto
// `channel DisplayChannel`; what QEMU 7.2 actually sends is in docs/spice-protocol.md §3.6 (std VGA and
// virtio-gpu: SURFACE_CREATE + DRAW_COPY of 32BIT bitmaps or their LZ/GLZ/QUIC-compressed forms).
import { SpiceChannel, type ChannelOptions } from '../channel.ts';
import { hasCap } from '../caps.ts';
import { Emitter, type Event } from '../emitter.ts';
import { DisplayCap, DisplayMsg, DisplayMsgc, SurfaceFlags, VideoCodec } from '../proto/constants.ts';
import type { RgbaImage } from '../codecs/types.ts';
import type { VideoDecoders } from '../codecs/video.ts';
import { pixelFormat } from '../draw/pixel.ts';
import { drawArea } from '../draw/region.ts';
import { DrawCommands } from './display-draw.ts';
import { SpiceProtocolError } from '../proto/errors.ts';
import { Writer } from '../proto/writer.ts';
import type { ByteQueue, Transport } from '../transport.ts';
import type { Rect, Surface } from '../surface.ts';
import type { ImageCaches, ImageContext } from './display-images.ts';
import { StreamSet, type StreamStats } from './display-streams.ts';

/**
 * LZ4 is only sent when also asked for with PREFERRED_COMPRESSION (server/dcc.cpp dcc_compress_image).
 * Video: MULTI_CODEC + CODEC_MJPEG (the core's own decoder), SIZED_STREAM, STREAM_REPORT (the server
 * adapts the bit rate to the reports), PREF_VIDEO_CODEC_TYPE; displayClientCaps adds the host's video codecs.
 */
export const DISPLAY_CLIENT_CAPS = [
  DisplayCap.MONITORS_CONFIG, DisplayCap.PREF_COMPRESSION, DisplayCap.LZ4_COMPRESSION, DisplayCap.SIZED_STREAM,
  DisplayCap.STREAM_REPORT, DisplayCap.MULTI_CODEC, DisplayCap.CODEC_MJPEG, DisplayCap.PREF_VIDEO_CODEC_TYPE,
];

/** The cap that announces each codec a host may decode (spice-server streams only codecs the client has). */
const CODEC_CAP: Record<number, number> = {
  [VideoCodec.VP8]: DisplayCap.CODEC_VP8,
  [VideoCodec.H264]: DisplayCap.CODEC_H264,
  [VideoCodec.VP9]: DisplayCap.CODEC_VP9,
};

/** DISPLAY_CLIENT_CAPS plus the caps of the video codecs the host decodes (VideoDecoders.codecs). */
export function displayClientCaps(videoCodecs: readonly number[] = []): number[] {
  const extra = videoCodecs.map((c) => CODEC_CAP[c]).filter((c): c is number => c !== undefined);
  return [...DISPLAY_CLIENT_CAPS, ...extra];
}

/**
 * PREFERRED_VIDEO_CODEC_TYPE's list: `preferred` (VideoCodec values) first, then MJPEG, which every client decodes.
 * spice-server puts the codecs named first in this order and tries its own list's others after them
 * (server/dcc.cpp dcc_update_preferred_video_codecs), each only if the client has its cap.
 */
export function videoCodecPreference(preferred: readonly number[]): number[] {
  const list = preferred.filter((c, i) => preferred.indexOf(c) === i && c !== VideoCodec.MJPEG);
  return [...list, VideoCodec.MJPEG];
}

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
  /** The server's multimedia clock as the session estimates it (ms; stream reports, video presentation). */
  mmTime: () => number;
  /** The host's VP8/VP9/H.264 decoders; without, streams are MJPEG only. */
  video?: VideoDecoders;
}

export interface DisplayStats {
  /** Decoded images by type name (bitmap, lz_rgb, quic, glz_rgb, from_cache …). */
  decoded: Record<string, number>;
  /** Pixels decoded, by the same names (throughput figures). */
  decodedPixels: Record<string, number>;
  /** Drawing commands handled, by message name (DRAW_FILL, COPY_BITS …), drawn or clipped away. */
  drawn: Record<string, number>;
  /** Drawing commands received but not rendered, by reason (DRAW_COMPOSITE …). */
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
  /**
   * MARK: the server sent the whole picture. A newly connected client gets the primary surface, one image of all of
   * it, then MARK (spice-server dcc_start); a primary surface created later (guest mode change) is also followed by
   * MARK, before the guest draws into it. Fires after every message before it was applied (they are handled in
   * order, synchronously), so a listener sees exactly the marked picture.
   */
  readonly onMark: Event<void> = this._onMark.event;
  private _marked = false;
  private readonly _onMonitorsConfig = new Emitter<MonitorHead[]>();
  /** MONITORS_CONFIG: the guest's heads (monitors), each a region of a surface; `heads` holds the last list. */
  readonly onMonitorsConfig: Event<MonitorHead[]> = this._onMonitorsConfig.event;
  private _heads: MonitorHead[] = [];

  readonly surfaces = new Map<number, { info: SurfaceInfo; surface: Surface }>();
  readonly displayStats: DisplayStats;
  /** Video streams currently playing, by stream id. */
  readonly streams: StreamSet;
  private readonly _images: ImageContext;
  private readonly _draw: DrawCommands;

  constructor(
    type: number,
    id: number,
    transport: Transport,
    queue: ByteQueue,
    options: ChannelOptions,
    private readonly _opts: DisplayOptions,
  ) {
    super(type, id, transport, queue, options);
    const decoded: Record<string, number> = {};
    const decodedPixels: Record<string, number> = {};
    this.streams = new StreamSet({
      draw: (surfaceId, box, clip, img) => this._drawFrame(surfaceId, box, clip, img),
      send: (t, body) => this.send(t, body),
      mmTime: _opts.mmTime,
      now: () => Date.now(),
      maxImagePixels: _opts.maxImagePixels,
      decoded,
      decodedPixels,
      serverReports: hasCap(_opts.serverCaps, DisplayCap.STREAM_REPORT),
      video: _opts.video,
    });
    this.displayStats = { decoded, decodedPixels, drawn: {}, skipped: {}, streams: this.streams.stats };
    this._images = {
      caches: _opts.caches,
      maxImagePixels: _opts.maxImagePixels,
      surface: (id) => this.surfaces.get(id)?.surface,
      surfaceHasAlpha: (id) => pixelFormat(this.surfaces.get(id)?.info.format ?? 0).alpha,
      decoded,
      decodedPixels,
    };
    this._draw = new DrawCommands({
      target: (id) => {
        const s = this.surfaces.get(id);
        return s && { surface: s.surface, format: s.info.format };
      },
      images: this._images,
      drawn: this.displayStats.drawn,
      skipped: this.displayStats.skipped,
      invalidate: (surfaceId, rect) => this._onInvalidate.fire({ surfaceId, rect }),
    });
  }

  /** A MARK arrived while the current primary surface existed (false again when a primary surface is created or
   * destroyed). */
  get marked(): boolean {
    return this._marked;
  }

  /** The guest's heads as the last MONITORS_CONFIG listed them (empty before one came). */
  get heads(): readonly MonitorHead[] {
    return this._heads;
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
    this.setPreferredVideoCodecs(this._opts.video?.codecs ?? []);
  }

  /**
   * Asks the server to stream new video in the first codec of `codecs` (VideoCodec values) it can encode, then the
   * next…, MJPEG last (PREFERRED_VIDEO_CODEC_TYPE); streams already playing keep theirs. Codecs the host cannot
   * decode are left out. Returns false if the server lacks PREF_VIDEO_CODEC_TYPE.
   */
  setPreferredVideoCodecs(codecs: readonly number[]): boolean {
    if (!hasCap(this._opts.serverCaps, DisplayCap.PREF_VIDEO_CODEC_TYPE)) return false;
    const host = this._opts.video?.codecs ?? [];
    const list = videoCodecPreference(codecs.filter((c) => host.includes(c)));
    const w = new Writer(1 + list.length).u8(list.length);
    for (const c of list) w.u8(c);
    this.send(DisplayMsgc.PREFERRED_VIDEO_CODEC_TYPE, w.finish());
    return true;
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
        const surface = this._opts.createSurface(info);
        // Surfaces with alpha start transparent, as the reference allocates them zeroed.
        if (pixelFormat(info.format).alpha)
          surface.putImage(
            { width: info.width, height: info.height, data: new Uint8Array(info.width * info.height * 4) },
            0,
            0,
            { left: 0, top: 0, right: info.width, bottom: info.height },
          );
        if (info.primary) this._marked = false;
        this.surfaces.set(info.id, { info, surface });
        this._onSurfaceCreated.fire(info);
        return;
      }
      case DisplayMsg.SURFACE_DESTROY: {
        const id = r.u32();
        if (this.surfaces.get(id)?.info.primary) this._marked = false;
        this.surfaces.delete(id);
        this._onSurfaceDestroyed.fire(id);
        return;
      }
      case DisplayMsg.MARK:
        if (this.primary) this._marked = true;
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
        this._heads = heads;
        this._onMonitorsConfig.fire(heads);
        return;
      }
      case DisplayMsg.DRAW_COMPOSITE:
        // Only announced-COMPOSITE clients get it (xf86-video-qxl checks the client caps).
        this.displayStats.skipped.DRAW_COMPOSITE = (this.displayStats.skipped.DRAW_COMPOSITE ?? 0) + 1;
        return;
      default:
        if (this._draw.handle(type, r)) return;
        if (this.streams.handle(type, r)) return;
        // MODE/RESET (legacy), GL scanout (unix fd passing, local only).
        this.ignore(type);
    }
  }

  /** A video frame (already flipped and scaled to `box`), clipped. */
  private _drawFrame(surfaceId: number, box: Rect, clip: Rect[] | null, img: RgbaImage): void {
    const t = this.surfaces.get(surfaceId);
    if (!t) throw new SpiceProtocolError(`stream on unknown surface ${surfaceId}`);
    const area = drawArea(box, clip, t.info.width, t.info.height);
    if (!area) return;
    for (const p of area.pieces ?? [area.rect]) t.surface.putImage(img, p.left - box.left, p.top - box.top, p);
    this._onInvalidate.fire({ surfaceId, rect: area.rect });
  }

  protected override onClosed(): void {
    for (const e of [this._onSurfaceCreated, this._onSurfaceDestroyed, this._onInvalidate, this._onMonitorsConfig])
      e.dispose();
    this._onMark.dispose();
  }
}
