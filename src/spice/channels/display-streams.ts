// Video streams of the display channel: spice.proto DisplayChannel stream_create (122) … stream_destroy_all
// (126), stream_data_sized (316), stream_activate_report (319) and the client's stream_report (102);
// client behaviour after spice-gtk src/channel-display.c. The server turns a region that changes
// like video (≥ 20 updates of ≥ 96×96 px less than 200 ms apart, server/video-stream.h; QEMU's
// `streaming-video=all|filter`) into a stream: each frame is one encoded picture of
// stream_width × stream_height (STREAM_DATA_SIZED: its own size and dest), drawn scaled into `dest`,
// clipped by the stream's clip, rows bottom-up unless TOP_DOWN. Frames are drawn as they arrive
// (a headless client has nothing to synchronise with; multi_media_time only feeds the reports).
// Only MJPEG is decoded; a stream of another codec is reported as invalid (num_frames 0, num_drops
// 0xffffffff), which makes the server stop it, as spice-gtk report_invalid_stream does.
import * as jpeg from '../codecs/jpeg.ts';
import { flipRows, type RgbaImage } from '../codecs/types.ts';
import { DisplayMsg, DisplayMsgc, VideoCodec, nameOf } from '../proto/constants.ts';
import { SpiceProtocolError } from '../proto/errors.ts';
import type { Reader } from '../proto/reader.ts';
import { Writer } from '../proto/writer.ts';
import type { Rect } from '../surface.ts';
import { readClip, readRect, scaleNearest } from './display-wire.ts';

/** spice.proto `flags8 stream_flags`. */
const STREAM_TOP_DOWN = 1;
/** STREAM_REPORT audio_delay when there is no audio playback. */
const NO_AUDIO = 0xffffffff;

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
}

export class StreamSet {
  readonly streams = new Map<number, VideoStream>();
  readonly stats: StreamStats = { created: 0, destroyed: 0, frames: 0, reports: 0 };

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
        if (codec !== VideoCodec.MJPEG) {
          this._reportInvalid(id);
          return true;
        }
        this.streams.set(id, {
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
        });
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
    if (this.streams.delete(id)) this.stats.destroyed++;
  }

  private _frame(s: VideoStream, mmTime: number, data: Uint8Array, width: number, height: number, dest: Rect): void {
    const img = jpeg.decode(data, { maxPixels: this._host.maxImagePixels, tables: s.tables });
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
    this._countForReport(s, mmTime);
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
