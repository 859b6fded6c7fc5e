// The sound channels' messages (spice.proto `channel PlaybackChannel`, `channel RecordChannel`; spice-protocol
// enums.h; docs in shared notes spice-devices.md §3): parsing of what the server sends, serialising of what the
// client sends. Pure functions over bytes, so tests can check them without a server.
import { SpiceProtocolError } from '../proto/errors.ts';
import { Reader } from '../proto/reader.ts';
import { Writer } from '../proto/writer.ts';

export const PlaybackMsg = {
  DATA: 101, MODE: 102, START: 103, STOP: 104, VOLUME: 105, MUTE: 106, LATENCY: 107,
} as const;
export const RecordMsg = { START: 101, STOP: 102, VOLUME: 103, MUTE: 104 } as const;
export const RecordMsgc = { DATA: 101, MODE: 102, START_MARK: 103 } as const;
/** Link caps (bit numbers). CELT (0) is long gone from spice-server; never announced. */
export const PlaybackCap = { CELT_0_5_1: 0, VOLUME: 1, LATENCY: 2, OPUS: 3 } as const;
export const RecordCap = { CELT_0_5_1: 0, VOLUME: 1, OPUS: 2 } as const;
/** spice_audio_data_mode */
export const AudioMode = { INVALID: 0, RAW: 1, CELT_0_5_1: 2, OPUS: 3 } as const;
/** spice_audio_fmt: signed 16-bit little-endian, the only one. */
export const AUDIO_FMT_S16 = 1;
/** What spice-server sends and expects: 48 kHz stereo, 10 ms (480 frames) per DATA. */
export const AUDIO_RATE = 48000;
export const AUDIO_CHANNELS = 2;
export const FRAMES_PER_PACKET = 480;
/** Bounds accepted in START: anything else is not audio spice-server produces. */
const MAX_CHANNELS = 8;
const MAX_RATE = 384000;

export interface AudioFormat {
  channels: number;
  /** AUDIO_FMT_S16 */
  format: number;
  frequency: number;
}

export interface PlaybackStart extends AudioFormat {
  /** mm-time of the first packet (ms). */
  time: number;
}

export interface AudioPacket {
  /** mm-time (ms) at which this packet should be heard. */
  time: number;
  data: Uint8Array;
}

export interface AudioModeMsg {
  time: number;
  mode: number;
  data: Uint8Array;
}

function checkFormat(f: AudioFormat, what: string): void {
  if (f.format !== AUDIO_FMT_S16) throw new SpiceProtocolError(`${what}: unknown sample format ${f.format}`);
  if (f.channels < 1 || f.channels > MAX_CHANNELS) throw new SpiceProtocolError(`${what}: ${f.channels} channels`);
  if (f.frequency < 1 || f.frequency > MAX_RATE) throw new SpiceProtocolError(`${what}: rate ${f.frequency} Hz`);
}

/** PLAYBACK START {channels u32, format u16, frequency u32, time u32}. */
export function parsePlaybackStart(body: Uint8Array): PlaybackStart {
  const r = new Reader(body, 0, 'PLAYBACK START');
  const s = { channels: r.u32(), format: r.u16(), frequency: r.u32(), time: r.u32() };
  checkFormat(s, 'PLAYBACK START');
  return s;
}

/** RECORD START {channels u32, format u16, frequency u32}. */
export function parseRecordStart(body: Uint8Array): AudioFormat {
  const r = new Reader(body, 0, 'RECORD START');
  const s = { channels: r.u32(), format: r.u16(), frequency: r.u32() };
  checkFormat(s, 'RECORD START');
  return s;
}

/** PLAYBACK DATA {time u32, data[] to the end}. */
export function parseAudioPacket(body: Uint8Array, what = 'PLAYBACK DATA'): AudioPacket {
  const r = new Reader(body, 0, what);
  return { time: r.u32(), data: r.rest() };
}

/** PLAYBACK MODE (and the client's RECORD MODE) {time u32, mode u16, data[] to the end}. */
export function parseAudioMode(body: Uint8Array, what = 'PLAYBACK MODE'): AudioModeMsg {
  const r = new Reader(body, 0, what);
  return { time: r.u32(), mode: r.u16(), data: r.rest() };
}

/** VOLUME {nchannels u8, volume u16[nchannels]} (0–65535 per channel). */
export function parseVolume(body: Uint8Array, what = 'VOLUME'): number[] {
  const r = new Reader(body, 0, what);
  const n = r.count(r.u8(), 2);
  return Array.from({ length: n }, () => r.u16());
}

/** MUTE {mute u8}. */
export function parseMute(body: Uint8Array, what = 'MUTE'): boolean {
  return new Reader(body, 0, what).u8() !== 0;
}

/** PLAYBACK LATENCY {latency_ms u32}: the smallest buffer the client should keep. */
export function parseLatency(body: Uint8Array): number {
  return new Reader(body, 0, 'PLAYBACK LATENCY').u32();
}

export function serializeRecordMode(time: number, mode: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  return new Writer(6 + data.length).u32(time).u16(mode).bytes(data).finish();
}

export function serializeStartMark(time: number): Uint8Array {
  return new Writer(4).u32(time).finish();
}

export function serializeAudioPacket(time: number, data: Uint8Array): Uint8Array {
  return new Writer(4 + data.length).u32(time).bytes(data).finish();
}

/** S16LE bytes → samples (copies when the bytes are not 2-byte aligned; an odd last byte is dropped). */
export function s16FromBytes(b: Uint8Array): Int16Array {
  const n = b.length >> 1;
  if ((b.byteOffset & 1) === 0) return new Int16Array(b.buffer, b.byteOffset, n);
  return new Int16Array(b.slice(0, n * 2).buffer);
}

/** Samples → S16LE bytes (a view; every host this runs on is little-endian). */
export function bytesFromS16(s: Int16Array): Uint8Array {
  return new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
}
