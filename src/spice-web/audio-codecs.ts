// Opus for the console's sound through WebCodecs: an AudioDecoder when the browser has one (then the session
// announces OPUS and spice-server sends 10 ms Opus packets instead of raw PCM), and an AudioEncoder for the
// microphone (the record channel then sends one 10 ms Opus packet per 480 frames when the server takes Opus, about
// a tenth of raw PCM's 1.5 Mbit/s). Without them, raw S16 48 kHz both ways.
import type { AudioCodecs, OpusDecoder, OpusEncoder } from '../spice/index.ts';

/** An encoder that has not given a packet for this long has failed: the microphone is dropped, never stuck. */
const ENCODE_TIMEOUT_MS = 1000;

/** The codecs this browser offers the session (none: raw PCM both ways). */
export function browserAudioCodecs(): AudioCodecs {
  const codecs: AudioCodecs = {};
  if (typeof AudioDecoder === 'function' && typeof EncodedAudioChunk === 'function') {
    codecs.opusDecoder = webCodecsOpusDecoder;
  }
  if (typeof AudioEncoder === 'function' && typeof AudioData === 'function') codecs.opusEncoder = webCodecsOpusEncoder;
  return codecs;
}

/** One WebCodecs AudioEncoder at 10 ms frames: each 480-frame input gives one packet (Chromium: at once), in order. */
function webCodecsOpusEncoder(channels: number, rate: number): OpusEncoder {
  const waiting: { resolve: (p: Uint8Array) => void; reject: (e: Error) => void; stop: () => void }[] = [];
  let failed: Error | undefined;
  const fail = (e: Error) => {
    failed ??= e;
    for (const w of waiting.splice(0)) {
      w.stop();
      w.reject(failed);
    }
    if (enc.state !== 'closed') enc.close();
  };
  const enc = new AudioEncoder({
    output: (chunk) => {
      const w = waiting.shift();
      if (!w) return;
      w.stop();
      const packet = new Uint8Array(chunk.byteLength);
      chunk.copyTo(packet);
      w.resolve(packet);
    },
    error: (e) => fail(e instanceof Error ? e : new Error(String(e))),
  });
  enc.configure({ codec: 'opus', sampleRate: rate, numberOfChannels: channels, bitrate: 128_000,
    opus: { frameDuration: 10_000 } } as AudioEncoderConfig);
  let ts = 0;
  return {
    encode(pcm) {
      if (failed || enc.state === 'closed') return Promise.reject(failed ?? new Error('encoder closed'));
      return new Promise<Uint8Array>((resolve, reject) => {
        const timer = setTimeout(() => fail(new Error('the Opus encoder stalled')), ENCODE_TIMEOUT_MS);
        waiting.push({ resolve, reject, stop: () => clearTimeout(timer) });
        const frames = pcm.length / channels;
        const data = new AudioData({ format: 's16', sampleRate: rate, numberOfFrames: frames, numberOfChannels: channels,
          timestamp: ts, data: pcm as Int16Array<ArrayBuffer> });
        ts += Math.round((frames * 1e6) / rate);
        enc.encode(data);
        data.close();
      });
    },
    close() {
      fail(new Error('encoder closed'));
    },
  };
}

/** One WebCodecs AudioDecoder; each packet gives one AudioData (Opus has no decoder delay), matched in order. */
function webCodecsOpusDecoder(channels: number, rate: number): OpusDecoder {
  const waiting: { resolve: (s: Int16Array) => void; reject: (e: Error) => void }[] = [];
  let failed: Error | undefined;
  const dec = new AudioDecoder({
    output: (data) => {
      const w = waiting.shift();
      try {
        w?.resolve(interleave(data));
      } finally {
        data.close();
      }
    },
    error: (e) => {
      failed = e instanceof Error ? e : new Error(String(e));
      for (const w of waiting.splice(0)) w.reject(failed);
    },
  });
  dec.configure({ codec: 'opus', sampleRate: rate, numberOfChannels: channels });
  let ts = 0;
  return {
    decode(packet) {
      if (failed || dec.state === 'closed') return Promise.reject(failed ?? new Error('decoder closed'));
      return new Promise<Int16Array>((resolve, reject) => {
        waiting.push({ resolve, reject });
        dec.decode(new EncodedAudioChunk({ type: 'key', timestamp: ts, data: packet }));
        ts += 10_000;
      });
    },
    close() {
      for (const w of waiting.splice(0)) w.reject(new Error('decoder closed'));
      if (dec.state !== 'closed') dec.close();
    },
  };
}

/** AudioData (any format) → interleaved S16, through f32-planar copies (the conversion every browser does). */
function interleave(data: AudioData): Int16Array {
  const n = data.numberOfFrames;
  const ch = data.numberOfChannels;
  const out = new Int16Array(n * ch);
  const plane = new Float32Array(n);
  for (let c = 0; c < ch; c++) {
    data.copyTo(plane, { planeIndex: c, format: 'f32-planar' });
    for (let i = 0; i < n; i++) out[i * ch + c] = Math.max(-32768, Math.min(32767, Math.round(plane[i]! * 32768)));
  }
  return out;
}
