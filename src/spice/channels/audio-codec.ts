// Pluggable Opus for the sound channels. The core has no Opus of its own: a host that can decode (the browser's
// WebCodecs AudioDecoder, an npm Opus build in Node) hands factories in, and only then does the client announce
// the OPUS capability; raw S16LE 48 kHz stereo always works without them.

/** Decodes one Opus packet (10 ms from spice-server) to interleaved S16 samples. May be async (WebCodecs). */
export interface OpusDecoder {
  decode(packet: Uint8Array): Int16Array | Promise<Int16Array>;
  close(): void;
}

/** Encodes interleaved S16 samples (exactly 480 frames: the server decodes into a 480-frame buffer) to one packet. */
export interface OpusEncoder {
  encode(pcm: Int16Array): Uint8Array | Promise<Uint8Array>;
  close(): void;
}

export interface AudioCodecs {
  /** Present ⇒ the playback channel announces OPUS and the server sends Opus. */
  opusDecoder?: (channels: number, rate: number) => OpusDecoder;
  /** Present ⇒ the record channel announces OPUS and sends Opus when the server can decode it. */
  opusEncoder?: (channels: number, rate: number) => OpusEncoder;
}
