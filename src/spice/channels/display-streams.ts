// Video streams of the display channel: spice.proto DisplayChannel stream_create (122) … stream_destroy_all
// (126), stream_data_sized (316), stream_activate_report (319) and the client's stream_report (102);
// client behaviour after spice-gtk src/channel-display.c. The server turns a region that changes
// like video (≥ 20 updates of ≥ 96×96 px less than 200 ms apart, server/video-stream.h; QEMU's
// `streaming-video=all|filter`) into a stream: each frame is one encoded picture of
// stream_width × stream_height (STREAM_DATA_SIZED: its own size and dest), drawn scaled into `dest`,
// clipped by the stream's clip, rows bottom-up unless TOP_DOWN (for every codec: the encoders take
// the bitmap's rows as they are, spice-gtk stream_display_frame flips them all).
// MJPEG is decoded here and drawn as it arrives; VP8, VP9 and H.264 by the host's decoder (VideoDecoders, e.g.
// WebCodecs in the browser), whose pictures are presented at their frame's multimedia time, as spice-gtk does
// (late ones at once, and never held longer than MAX_HOLD_MS, whatever the clock says). Both feed the stream
// reports with their mm_time. A stream of a codec nobody here decodes, or whose decoder failed, is reported as
// invalid (num_frames 0, num_drops 0xffffffff), which makes the server stop it, as spice-gtk report_invalid_stream
// does.
import * as jpeg from '../codecs/jpeg.ts';
import { isKeyFrame, type StreamVideoDecoder, type VideoDecoders } from '../codecs/video.ts';
import { flipRows, type RgbaImage } from '../codecs/types.ts';
import { DisplayMsg, DisplayMsgc, VideoCodec, nameOf } from '../proto/constants.ts';
import { SpiceProtocolError } from '../proto/errors.ts';
import type { Reader } from '../proto/reader.ts';
import { Writer } from '../proto/writer.ts';
import type { Rect } from '../surface.ts';
import { startTimer } from '../timers.ts';
import { readClip, readRect, scaleNearest } from './display-wire.ts';

/** spice.proto `flags8 stream_flags`. */
const STREAM_TOP_DOWN = 1;
/** STREAM_REPORT audio_delay when there is no audio playback. */
const NO_AUDIO = 0xffffffff;
/** A decoded picture waits for its multimedia time at most this long. */
const MAX_HOLD_MS = 1000;

/** A frame handed to a host decoder, until its picture comes out. */
interface PendingFrame {
  mmTime: number;
  width: number;
  height: number;
  dest: Rect;
}

export interface VideoStream {
  id: number;
  surfaceId: number;
  codec: number; // VideoCodec
  topDown: boolean;
  width: number;
  height: number;
  dest: Rect;
  clip: Rect[] | null;
  frames: number;
  /** MJPEG frames after the first may omit their tables (server/mjpeg-encoder.c). */
  tables: jpeg.JpegTables;
  report?: StreamReportState;
  /** VP8/VP9/H.264: the host's decoder, frames in it, pictures waiting for their time, frames dropped. */
  video?: {
    decoder: StreamVideoDecoder;
    needKey: boolean;
    pending: Map<number, PendingFrame>;
    timers: Set<() => void>;
    failed: boolean;
  };
}

interface StreamReportState {
  uniqueId: number;
  maxWindow: number;
  timeoutMs: number;
  startedAt: number;
  startFrameTime: number;
  frames: number;
  drops: number;
}

export interface StreamStats {
  created: number;
  destroyed: number;
  /** Frames decoded and drawn, all streams. */
  frames: number;
  reports: number;
  /** Video frames not shown: before the first key frame, or still waiting when their stream ended. */
  dropped: number;
  /** Streams whose host decoder failed (reported invalid). */
  failed: number;
}

export interface StreamHost {
  /** Draws a frame (already flipped and scaled to dest) clipped by `clip` (null: dest only). */
  draw(surfaceId: number, dest: Rect, clip: Rect[] | null, img: RgbaImage): void;
  send(type: number, body: Uint8Array): void;
  /** The server's multimedia clock as estimated by the client (ms). */
  mmTime(): number;
  /** Milliseconds of a monotonic-enough clock (report timeouts). */
  now(): number;
  maxImagePixels: number;
  /** Decoded pictures and their pixels by codec name, shared with the image statistics ("mjpeg"). */
  decoded: Record<string, number>;
  decodedPixels: Record<string, number>;
  /** The server has DisplayCap.STREAM_REPORT (reports of invalid streams are sent only then). */
  serverReports: boolean;
  /** The host's decoders of VP8/VP9/H.264 (none: MJPEG only). */
  video?: VideoDecoders;
}

export class StreamSet {
  readonly streams = new Map<number, VideoStream>();
  readonly stats: StreamStats = { created: 0, destroyed: 0, frames: 0, reports: 0, dropped: 0, failed: 0 };
  /** Why the last host decoder failed (diagnostics). */
  lastError: string | undefined;
  private _tag = 0;

  constructor(private readonly _host: StreamHost) {}

  /** Handles a stream message; false if `type` is not one. */
  handle(type: number, r: Reader): boolean {
    switch (type) {
      case DisplayMsg.STREAM_CREATE: {
        const surfaceId = r.u32();
        const id = r.u32();
        const flags = r.u8();
        const codec = r.u8();
        r.u64(); // stamp
        const width = r.u32();
        const height = r.u32();
        r.u32(); // src_width, src_height: the size of the area in the guest, before the encoder scaled it
        r.u32();
        const dest = readRect(r);
        const clip = readClip(r);
        if (this.streams.has(id)) throw new SpiceProtocolError(`STREAM_CREATE of existing stream ${id}`);
        this.stats.created++;
        const s: VideoStream = {
          id,
          surfaceId,
          codec,
          topDown: (flags & STREAM_TOP_DOWN) !== 0,
          width,
          height,
          dest,
          clip,
          frames: 0,
          tables: new jpeg.JpegTables(),
        };
        if (codec !== VideoCodec.MJPEG && !this._startDecoder(s)) {
          this._reportInvalid(id);
          return true;
        }
        this.streams.set(id, s);
        return true;
      }
      case DisplayMsg.STREAM_DATA: {
        const id = r.u32();
        const mmTime = r.u32();
        const data = r.bytesView(r.u32());
        const s = this._get(id);
        if (s) this._frame(s, mmTime, data, s.width, s.height, s.dest);
        return true;
      }
      case DisplayMsg.STREAM_DATA_SIZED: {
        const id = r.u32();
        const mmTime = r.u32();
        const width = r.u32();
        const height = r.u32();
        const dest = readRect(r);
        const data = r.bytesView(r.u32());
        const s = this._get(id);
        if (s) this._frame(s, mmTime, data, width, height, dest);
        return true;
      }
      case DisplayMsg.STREAM_CLIP: {
        const s = this._get(r.u32());
        const clip = readClip(r);
        if (s) s.clip = clip;
        return true;
      }
      case DisplayMsg.STREAM_DESTROY:
        this._destroy(r.u32());
        return true;
      case DisplayMsg.STREAM_DESTROY_ALL:
        for (const id of [...this.streams.keys()]) this._destroy(id);
        return true;
      case DisplayMsg.STREAM_ACTIVATE_REPORT: {
        const s = this._get(r.u32());
        const uniqueId = r.u32();
        const maxWindow = r.u32();
        const timeoutMs = r.u32();
        if (s) s.report = { uniqueId, maxWindow, timeoutMs, startedAt: 0, startFrameTime: 0, frames: 0, drops: 0 };
        return true;
      }
      default:
        return false;
    }
  }

  private _get(id: number): VideoStream | undefined {
    const s = this.streams.get(id);
    if (!s) this._reportInvalid(id);
    return s;
  }

  private _destroy(id: number): void {
    const s = this.streams.get(id);
    if (!s) return;
    this.streams.delete(id);
    this.stats.destroyed++;
    this._stopDecoder(s);
  }

  /** A host decoder for a VP8/VP9/H.264 stream; false if the host has none for its codec. */
  private _startDecoder(s: VideoStream): boolean {
    const video = this._host.video;
    if (!video?.codecs.includes(s.codec)) return false;
    const decoder = video.create(s.codec, s.width, s.height, {
      picture: (tag, img) => this._picture(s, tag, img),
      error: (e) => this._fail(s, e),
    });
    if (!decoder) return false;
    s.video = { decoder, needKey: true, pending: new Map(), timers: new Set(), failed: false };
    return true;
  }

  private _stopDecoder(s: VideoStream): void {
    const v = s.video;
    if (!v) return;
    for (const cancel of v.timers) cancel();
    this.stats.dropped += v.pending.size + v.timers.size;
    v.timers.clear();
    v.pending.clear();
    v.decoder.close();
  }

  /** The host's decoder failed: the stream is reported invalid (the server stops it) and its frames ignored. */
  private _fail(s: VideoStream, e: Error): void {
    if (!s.video || s.video.failed) return;
    this.lastError = `stream ${s.id} (${nameOf(VideoCodec, s.codec)}): ${e.message}`;
    this._stopDecoder(s);
    s.video.failed = true;
    this.stats.failed++;
    if (this.streams.get(s.id) === s) this._reportInvalid(s.id);
  }

  private _frame(s: VideoStream, mmTime: number, data: Uint8Array, width: number, height: number, dest: Rect): void {
    const v = s.video;
    if (v) {
      if (v.failed) return;
      const key = isKeyFrame(s.codec, data);
      if (v.needKey && !key) {
        this.stats.dropped++;
        return;
      }
      v.needKey = false;
      const tag = this._tag++;
      v.pending.set(tag, { mmTime, width, height, dest });
      v.decoder.decode(data, key, tag);
    } else {
      const img = jpeg.decode(data, { maxPixels: this._host.maxImagePixels, tables: s.tables });
      this._show(s, img, width, height, dest);
    }
    // Reports count frames as they arrive, with how early they are (spice-gtk display_handle_stream_data).
    this._countForReport(s, mmTime);
  }

  /** A host decoder's picture: shown at its frame's multimedia time (at once if late). */
  private _picture(s: VideoStream, tag: number, img: RgbaImage): void {
    const v = s.video;
    const p = v?.pending.get(tag);
    if (!v || !p || v.failed) return;
    v.pending.delete(tag);
    const show = () => {
      try {
        this._show(s, img, p.width, p.height, p.dest);
      } catch (e) {
        this._fail(s, e as Error);
      }
    };
    const wait = Math.min(MAX_HOLD_MS, (p.mmTime - this._host.mmTime()) | 0);
    if (wait <= 0) return show();
    const cancel = startTimer(wait, () => {
      v.timers.delete(cancel);
      show();
    });
    v.timers.add(cancel);
  }

  /** Draws a decoded frame (width × height, rows as sent) into `dest`, clipped, and counts it. */
  private _show(s: VideoStream, img: RgbaImage, width: number, height: number, dest: Rect): void {
    if (img.width !== width || img.height !== height) {
      throw new SpiceProtocolError(`stream ${s.id}: ${img.width}×${img.height} frame, ${width}×${height} announced`);
    }
    if (!s.topDown) flipRows(img);
    const dw = dest.right - dest.left;
    const dh = dest.bottom - dest.top;
    if (dw <= 0 || dh <= 0 || dw * dh > this._host.maxImagePixels)
      throw new SpiceProtocolError(`stream ${s.id}: dest ${dw}×${dh}`);
    const frame =
      dw === width && dh === height
        ? img
        : scaleNearest(img, { left: 0, top: 0, right: width, bottom: height }, dw, dh);
    this._host.draw(s.surfaceId, dest, s.clip, frame);
    s.frames++;
    this.stats.frames++;
    const k = nameOf(VideoCodec, s.codec).toLowerCase();
    this._host.decoded[k] = (this._host.decoded[k] ?? 0) + 1;
    this._host.decodedPixels[k] = (this._host.decodedPixels[k] ?? 0) + width * height;
  }

  /** spice-gtk display_update_stream_report: a report per max_window frames or timeout_ms. */
  private _countForReport(s: VideoStream, frameTime: number): void {
    const rep = s.report;
    if (!rep) return;
    const now = this._host.now();
    if (rep.frames === 0) {
      rep.startedAt = now;
      rep.startFrameTime = frameTime;
    }
    rep.frames++;
    // Frame time ahead of the client's clock = early enough; behind = it would have been dropped.
    const margin = (frameTime - this._host.mmTime()) | 0;
    if (margin < 0) rep.drops++;
    if (rep.frames < rep.maxWindow && now - rep.startedAt < rep.timeoutMs) return;
    this._sendReport(s.id, rep.uniqueId, rep.startFrameTime, frameTime, rep.frames, rep.drops, margin);
    rep.frames = 0;
    rep.drops = 0;
  }

  private _reportInvalid(id: number): void {
    if (this._host.serverReports) this._sendReport(id, 0, 0, 0, 0, 0xffffffff, 0);
  }

  /**
   * STREAM_REPORT {stream_id, unique_id, start_frame_mm_time, end_frame_mm_time, num_frames, num_drops,
   * last_frame_delay i32, audio_delay}.
   */
  private _sendReport(
    id: number,
    uniqueId: number,
    start: number,
    end: number,
    frames: number,
    drops: number,
    delay: number,
  ): void {
    const w = new Writer(32).u32(id).u32(uniqueId).u32(start).u32(end).u32(frames).u32(drops).i32(delay).u32(NO_AUDIO);
    this._host.send(DisplayMsgc.STREAM_REPORT, w.finish());
    this.stats.reports++;
  }
}
