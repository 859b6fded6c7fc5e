// WAV files of 16-bit PCM (RIFF/WAVE, fmt format 1 or WAVE_FORMAT_EXTENSIBLE with 16-bit PCM), and converting
// audio to the rate and channel count a sound channel uses (linear interpolation; enough for speech and tones).
import { SpiceInputError } from '../proto/errors.ts';

export interface PcmAudio {
  /** Interleaved S16 samples. */
  samples: Int16Array;
  channels: number;
  rate: number;
}

const FORMAT_PCM = 1;
const FORMAT_EXTENSIBLE = 0xfffe;

export function encodeWav({ samples, channels, rate }: PcmAudio): Uint8Array {
  const data = samples.length * 2;
  const out = new Uint8Array(44 + data);
  const v = new DataView(out.buffer);
  const ascii = (at: number, s: string) => { for (let i = 0; i < 4; i++) out[at + i] = s.charCodeAt(i); };
  ascii(0, 'RIFF');
  v.setUint32(4, 36 + data, true);
  ascii(8, 'WAVE');
  ascii(12, 'fmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, FORMAT_PCM, true);
  v.setUint16(22, channels, true);
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * channels * 2, true);
  v.setUint16(32, channels * 2, true);
  v.setUint16(34, 16, true);
  ascii(36, 'data');
  v.setUint32(40, data, true);
  for (let i = 0; i < samples.length; i++) v.setInt16(44 + 2 * i, samples[i]!, true);
  return out;
}

/** Parses a 16-bit PCM WAV file; anything else is a SpiceInputError saying what it is. */
export function decodeWav(bytes: Uint8Array): PcmAudio {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw new SpiceInputError('not a WAV file');
  let fmt: { channels: number; rate: number; bits: number; format: number } | undefined;
  for (let at = 12; at + 8 <= bytes.length;) {
    const id = tag(at);
    const size = v.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > bytes.length) throw new SpiceInputError('WAV: truncated fmt chunk');
      let format = v.getUint16(body, true);
      if (format === FORMAT_EXTENSIBLE && size >= 40 && body + 26 <= bytes.length)
        format = v.getUint16(body + 24, true);
      fmt = { format, channels: v.getUint16(body + 2, true), rate: v.getUint32(body + 4, true),
        bits: v.getUint16(body + 14, true) };
    } else if (id === 'data') {
      if (!fmt) throw new SpiceInputError('WAV: data before fmt');
      if (fmt.format !== FORMAT_PCM || fmt.bits !== 16)
        throw new SpiceInputError(`WAV: only 16-bit PCM is supported (format ${fmt.format}, ${fmt.bits} bits)`);
      if (fmt.channels < 1 || fmt.channels > 8 || fmt.rate < 1000 || fmt.rate > 384000)
        throw new SpiceInputError(`WAV: ${fmt.channels} channels at ${fmt.rate} Hz is not supported`);
      // A streamed WAV may give 0 or 0xFFFFFFFF as the data size: take what is there.
      const len = Math.min(size, bytes.length - body);
      const frames = Math.floor(len / (2 * fmt.channels));
      const samples = new Int16Array(frames * fmt.channels);
      for (let i = 0; i < samples.length; i++) samples[i] = v.getInt16(body + 2 * i, true);
      return { samples, channels: fmt.channels, rate: fmt.rate };
    }
    at = body + size + (size & 1);
  }
  throw new SpiceInputError('WAV: no data chunk');
}

/** Converts to `channels` and `rate`: mono is copied to every channel, more channels are averaged down. */
export function convertPcm(a: PcmAudio, channels: number, rate: number): PcmAudio {
  const inFrames = a.samples.length / a.channels;
  const outFrames = a.rate === rate ? inFrames : Math.floor((inFrames * rate) / a.rate);
  const out = new Int16Array(outFrames * channels);
  const frame = (i: number, c: number): number => {
    if (a.channels === channels) return a.samples[i * a.channels + c]!;
    if (a.channels === 1) return a.samples[i]!;
    if (channels === 1 || a.channels > channels) {
      let s = 0;
      for (let k = 0; k < a.channels; k++) s += a.samples[i * a.channels + k]!;
      return s / a.channels;
    }
    return a.samples[i * a.channels + Math.min(c, a.channels - 1)]!;
  };
  for (let o = 0; o < outFrames; o++) {
    const pos = (o * a.rate) / rate;
    const i = Math.floor(pos);
    const t = pos - i;
    const j = Math.min(i + 1, inFrames - 1);
    for (let c = 0; c < channels; c++) out[o * channels + c] = Math.round(frame(i, c) * (1 - t) + frame(j, c) * t);
  }
  return { samples: out, channels, rate };
}
