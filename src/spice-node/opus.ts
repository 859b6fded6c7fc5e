// Opus in Node for the sound channels: opusscript (libopus 1.4 built to WebAssembly, no native build), loaded only
// when a command uses sound. Gives the core's AudioCodecs; the session then announces OPUS on both channels.
import type { AudioCodecs, OpusDecoder, OpusEncoder } from '../spice/channels/audio-codec.ts';

type OpusScriptCtor = typeof import('opusscript');
/** OPUS_SET_BITRATE_REQUEST (opus_defines.h). */
const SET_BITRATE = 4002;

/** Loads opusscript and returns Opus factories for the session's `audio` option. */
export async function nodeOpusCodecs(): Promise<AudioCodecs> {
  const OpusScript = ((await import('opusscript')) as unknown as { default: OpusScriptCtor }).default;
  const rateOf = (rate: number) => {
    if (rate !== 8000 && rate !== 12000 && rate !== 16000 && rate !== 24000 && rate !== 48000)
      throw new Error(`Opus cannot run at ${rate} Hz`);
    return rate;
  };
  return {
    opusDecoder(channels, rate): OpusDecoder {
      const o = new OpusScript(rateOf(rate), channels, OpusScript.Application.AUDIO);
      return {
        decode(packet) {
          const b = o.decode(Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength));
          return new Int16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
        },
        close: () => o.delete(),
      };
    },
    opusEncoder(channels, rate): OpusEncoder {
      const o = new OpusScript(rateOf(rate), channels, OpusScript.Application.AUDIO);
      o.encoderCTL(SET_BITRATE, 128000);
      return {
        encode(pcm) {
          const b = o.encode(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength), pcm.length / channels);
          return new Uint8Array(b);
        },
        close: () => o.delete(),
      };
    },
  };
}
