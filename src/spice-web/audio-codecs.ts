// Opus for the console's sound through WebCodecs: an AudioDecoder when the browser has one (then the session
// announces OPUS and spice-server sends 10 ms Opus packets instead of raw PCM). The microphone goes out as raw
// PCM (S16LE 48 kHz): spice-server takes any 480-frame packet, and raw needs no encoder lag to be flushed.
import type { AudioCodecs, OpusDecoder } from '../spice/index.ts';

/** The codecs this browser offers the session (none: raw PCM both ways). */
export function browserAudioCodecs(): AudioCodecs {
  return typeof AudioDecoder === 'function' && typeof EncodedAudioChunk === 'function'
    ? { opusDecoder: webCodecsOpusDecoder }
    : {};
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
