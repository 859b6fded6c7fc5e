// Video streams in VP8, VP9 and H.264 (spice-server's GStreamer encoders, server/gstreamer-encoder.c): the core does
// not decode them; a host does (the browser: WebCodecs VideoDecoder, src/spice-web/video-codecs.ts) through the
// interface below. What the core knows of the bitstreams is only what a host needs to start a decoder: whether a
// frame is a key frame, and the H.264 profile and level (the codec string) from the sequence parameter set.
// Frames as spice-server sends them: VP8 and VP9 one frame (or VP9 superframe) each, H.264 an Annex-B byte stream
// access unit (x264enc byte-stream=true aud=true: AUD, then SPS + PPS + IDR on key frames).
import type { RgbaImage } from './types.ts';
import { VideoCodec } from '../proto/constants.ts';

/** One stream's decoder, in a host. Pictures come out in the order frames went in (no B-frames in SPICE streams). */
export interface StreamVideoDecoder {
  /** Queues a frame; its picture (the stream's width × height, rows as encoded) comes back with `tag`. */
  decode(data: Uint8Array, key: boolean, tag: number): void;
  /** Frees the decoder; pictures not yet out are dropped. */
  close(): void;
}

export interface VideoDecoderOutput {
  picture(tag: number, img: RgbaImage): void;
  /** The decoder failed for good (the stream is then reported invalid and dropped). */
  error(e: Error): void;
}

/** The video decoders a host offers the display channel (MJPEG is always the core's own). */
export interface VideoDecoders {
  /** VideoCodec values this host decodes, most preferred first (announced as caps and PREFERRED_VIDEO_CODEC_TYPE). */
  codecs: number[];
  /** A decoder for a stream of `codec`, `width` × `height`; undefined if it cannot (the stream is reported invalid). */
  create(codec: number, width: number, height: number, out: VideoDecoderOutput): StreamVideoDecoder | undefined;
}

/** Whether `data` (one stream frame) can start decoding. */
export function isKeyFrame(codec: number, data: Uint8Array): boolean {
  switch (codec) {
    case VideoCodec.VP8:
      // RFC 6386 §9.1: frame tag bit 0 is 0 for a key frame, which has the start code 9d 01 2a.
      return data.length >= 10 && (data[0]! & 1) === 0 && data[3] === 0x9d && data[4] === 0x01 && data[5] === 0x2a;
    case VideoCodec.VP9:
      return vp9Key(data);
    case VideoCodec.H264:
      for (const nal of annexBNals(data)) if ((data[nal]! & 0x1f) === 5) return true; // IDR slice
      return false;
    default:
      return true;
  }
}

/** VP9 uncompressed header (VP9 bitstream spec §6.2): frame_marker, profile, show_existing_frame, frame_type. */
function vp9Key(data: Uint8Array): boolean {
  if (data.length < 2) return false;
  let bit = 0;
  const read = (n: number): number => {
    let v = 0;
    for (let i = 0; i < n; i++, bit++) v = (v << 1) | ((data[bit >> 3]! >> (7 - (bit & 7))) & 1);
    return v;
  };
  if (read(2) !== 2) return false;
  const profile = read(1) | (read(1) << 1);
  if (profile === 3) read(1);
  if (read(1)) return false; // show_existing_frame
  return read(1) === 0; // frame_type KEY_FRAME = 0
}

/** Offsets of the NAL unit headers of an Annex-B byte stream (after each 00 00 01 start code). */
export function annexBNals(data: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 3 < data.length; i++) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      out.push(i + 3);
      i += 2;
    }
  }
  return out;
}

/**
 * The WebCodecs / RFC 6381 codec string of an H.264 stream, `avc1.PPCCLL` (profile_idc, constraint flags, level_idc
 * of its SPS), or undefined if `data` has no SPS. x264enc fed by videoconvert picks 4:4:4 from RGB: profile 244.
 */
export function avcCodecString(data: Uint8Array): string | undefined {
  for (const nal of annexBNals(data)) {
    if ((data[nal]! & 0x1f) !== 7 || nal + 3 >= data.length) continue;
    const hex = (b: number) => b.toString(16).toUpperCase().padStart(2, '0');
    return `avc1.${hex(data[nal + 1]!)}${hex(data[nal + 2]!)}${hex(data[nal + 3]!)}`;
  }
  return undefined;
}
