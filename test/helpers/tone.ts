// Tones for sound tests: a sine wave as interleaved S16, and a frequency estimate by zero crossings.

/** `seconds` of a `hz` sine at `amplitude`, the same on every channel. */
export function sine(hz: number, seconds: number, rate = 48000, channels = 2, amplitude = 12000): Int16Array {
  const frames = Math.round(seconds * rate);
  const out = new Int16Array(frames * channels);
  for (let i = 0; i < frames; i++) {
    const v = Math.round(amplitude * Math.sin((2 * Math.PI * hz * i) / rate));
    for (let c = 0; c < channels; c++) out[i * channels + c] = v;
  }
  return out;
}

export interface ToneEstimate {
  /** Frequency in Hz from the rising zero crossings of channel 0 within the loud part. */
  hz: number;
  /** Seconds of signal above the threshold. */
  loudSeconds: number;
  peak: number;
}

/**
 * Estimates the frequency of a tone: takes the span of frames whose magnitude exceeds `threshold` (the tone, not
 * the silence around it), finds rising crossings of zero with hysteresis (noise near zero does not count), and
 * averages the periods between them, leaving out pauses.
 */
export function estimateTone(samples: Int16Array, channels: number, rate: number, threshold = 1000): ToneEstimate {
  const frames = samples.length / channels;
  const at = (i: number) => samples[i * channels]!;
  let peak = 0;
  let first = -1;
  let last = -1;
  for (let i = 0; i < frames; i++) {
    const a = Math.abs(at(i));
    peak = Math.max(peak, a);
    if (a > threshold) {
      if (first < 0) first = i;
      last = i;
    }
  }
  if (first < 0) return { hz: 0, loudSeconds: 0, peak };
  const hyst = threshold / 4;
  let armed = false;
  const rises: number[] = [];
  for (let i = first; i <= last; i++) {
    const v = at(i);
    if (v < -hyst) armed = true;
    else if (armed && v >= 0) {
      rises.push(i);
      armed = false;
    }
  }
  // Periods = gaps between rises; a pause in the tone (e.g. between buffers) makes a long one, which is left out.
  const periods = rises.slice(1).map((r, k) => r - rises[k]!);
  const median = [...periods].sort((a, b) => a - b)[periods.length >> 1] ?? 0;
  const kept = periods.filter((p) => p < median * 1.5);
  const hz = kept.length ? (kept.length * rate) / kept.reduce((a, b) => a + b, 0) : 0;
  return { hz, loudSeconds: (last - first) / rate, peak };
}
