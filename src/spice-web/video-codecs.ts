// Video streams through WebCodecs: spice-server encodes a video-like region with GStreamer (VP8, H.264, VP9) when
// the client announces the codec; a VideoDecoder per stream decodes it here, and each picture is read back as RGBA
// (an OffscreenCanvas) for the core to draw into the surface like any other image. A codec this browser cannot
// decode (VideoDecoder.isConfigSupported says no, or no WebCodecs at all) is not announced: the server then
// streams MJPEG, which the core decodes itself.
import {
  VideoCodec,
  avcCodecString,
  type RgbaImage,
  type StreamVideoDecoder,
  type VideoDecoderOutput,
  type VideoDecoders,
} from '../spice/index.ts';

/**
 * WebCodecs codec strings, in order of preference. H.264 streams are configured with the profile and level of
 * their own SPS (spice-server's x264enc gets 4:4:4 from videoconvert: High 4:4:4 Predictive), so both that and
 * Constrained Baseline must be supported; VP9 profile 0 8-bit.
 */
const CODECS: { codec: number; probe: string[] }[] = [
  { codec: VideoCodec.VP8, probe: ['vp8'] },
  { codec: VideoCodec.H264, probe: ['avc1.42E01E', 'avc1.F4001F'] },
  { codec: VideoCodec.VP9, probe: ['vp09.00.10.08'] },
];

/** Names for the console's API and counters (the core counts decoded frames by these names too). */
export const VIDEO_CODEC_NAMES: Record<string, number> = {
  vp8: VideoCodec.VP8, h264: VideoCodec.H264, vp9: VideoCodec.VP9,
};

let probed: Promise<number[]> | undefined;

/** The codecs this browser's WebCodecs decodes (asked once per page). */
export function supportedVideoCodecs(): Promise<number[]> {
  probed ??= (async () => {
    if (typeof VideoDecoder !== 'function' || typeof OffscreenCanvas !== 'function') return [];
    const ok = async (codec: string) => {
      try {
        return (await VideoDecoder.isConfigSupported({ codec, codedWidth: 640, codedHeight: 480 })).supported === true;
      } catch {
        return false;
      }
    };
    const out: number[] = [];
    for (const c of CODECS) if ((await Promise.all(c.probe.map(ok))).every(Boolean)) out.push(c.codec);
    return out;
  })();
  return probed;
}

/** The session's video decoders: WebCodecs for the codecs the browser has (none: MJPEG only). */
export async function browserVideoDecoders(): Promise<VideoDecoders> {
  const codecs = await supportedVideoCodecs();
  return {
    codecs,
    create: (codec, w, h, out) => (codecs.includes(codec) ? webCodecsDecoder(codec, w, h, out) : undefined),
  };
}

function codecString(codec: number, keyFrame: Uint8Array): string {
  switch (codec) {
    case VideoCodec.VP8:
      return 'vp8';
    case VideoCodec.VP9:
      return 'vp09.00.10.08';
    default:
      return avcCodecString(keyFrame) ?? 'avc1.42E01E';
  }
}

/** One stream's VideoDecoder, configured at its first (key) frame; chunk timestamps carry the core's tags. */
function webCodecsDecoder(codec: number, width: number, height: number, out: VideoDecoderOutput): StreamVideoDecoder {
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true, alpha: false });
  if (!ctx) throw new Error('no 2d context for video frames');
  let failed = false;
  const fail = (e: unknown) => {
    if (failed) return;
    failed = true;
    const err = e instanceof Error ? e : new Error(String(e));
    console.warn(`video stream (codec ${codec}, ${width}×${height}): ${err.message}`);
    out.error(err);
  };
  // At the frame's own size: spice-server may encode a stream's later frames at another size (STREAM_DATA_SIZED).
  const picture = (frame: VideoFrame): RgbaImage => {
    const w = frame.displayWidth;
    const h = frame.displayHeight;
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    ctx.drawImage(frame, 0, 0, w, h);
    const img = ctx.getImageData(0, 0, w, h);
    return { width: w, height: h, data: new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength) };
  };
  let dec: VideoDecoder | undefined;
  return {
    decode(data, key, tag) {
      if (failed) return;
      try {
        if (!dec) {
          dec = new VideoDecoder({
            output: (frame) => {
              try {
                if (!failed) out.picture(frame.timestamp, picture(frame));
              } catch (e) {
                fail(e);
              } finally {
                frame.close();
              }
            },
            error: fail,
          });
          const config = { codec: codecString(codec, data), codedWidth: width, codedHeight: height };
          dec.configure({ ...config, optimizeForLatency: true });
        }
        dec.decode(new EncodedVideoChunk({ type: key ? 'key' : 'delta', timestamp: tag, data }));
      } catch (e) {
        fail(e);
      }
    },
    close() {
      failed = true;
      if (dec && dec.state !== 'closed') dec.close();
    },
  };
}
