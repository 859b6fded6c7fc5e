// Playback channel (type 5): what the guest plays. spice-server fixes the mode at connect (Opus iff the client
// announced OPUS and playback compression is on), then per guest stream: MODE, START, VOLUME/MUTE, DATA every
// 10 ms, STOP when the guest closes its PCM. DATA times are mm-time: the client keeps the session's multimedia
// clock at "last DATA time − output delay" (setDelay), which is what video frames are shown against.
import { SpiceChannel, type ChannelOptions } from '../channel.ts';
import { Emitter, type Event } from '../emitter.ts';
import { SpiceProtocolError } from '../proto/errors.ts';
import type { ByteQueue, Transport } from '../transport.ts';
import type { AudioCodecs, OpusDecoder } from './audio-codec.ts';
import {
  AudioMode, PlaybackCap, PlaybackMsg, parseAudioMode, parseAudioPacket, parseLatency, parseMute,
  parsePlaybackStart, parseVolume, s16FromBytes, type PlaybackStart,
} from './audio-wire.ts';

/** The link caps (bit numbers, as LinkParams takes them). */
export function playbackClientCaps(codecs: AudioCodecs = {}): number[] {
  const bits: number[] = [PlaybackCap.VOLUME, PlaybackCap.LATENCY];
  if (codecs.opusDecoder) bits.push(PlaybackCap.OPUS);
  return bits;
}

export interface PcmChunk {
  /** mm-time (ms) at which the first frame should be heard. */
  time: number;
  /** Interleaved S16 samples. */
  samples: Int16Array;
  channels: number;
  rate: number;
}

export interface PlaybackOptions {
  codecs?: AudioCodecs;
  /** Sets the session's multimedia clock (MainChannel.syncMmTime). */
  syncMmTime?: (mmTime: number) => void;
}

export class PlaybackChannel extends SpiceChannel {
  private readonly _onStart = new Emitter<PlaybackStart>();
  readonly onStart: Event<PlaybackStart> = this._onStart.event;
  private readonly _onStop = new Emitter<void>();
  readonly onStop: Event<void> = this._onStop.event;
  private readonly _onPcm = new Emitter<PcmChunk>();
  /** Decoded audio, in order (raw always; Opus when a decoder was given). */
  readonly onPcm: Event<PcmChunk> = this._onPcm.event;
  private readonly _onVolume = new Emitter<number[]>();
  readonly onVolume: Event<number[]> = this._onVolume.event;
  private readonly _onMute = new Emitter<boolean>();
  readonly onMute: Event<boolean> = this._onMute.event;

  /** AudioMode of the DATA the server sends (RAW until told otherwise). */
  mode: number = AudioMode.RAW;
  format: PlaybackStart | undefined;
  playing = false;
  volume: number[] = [];
  muted = false;
  /** The minimum buffer (ms) the server asked for; spice-gtk's default until LATENCY says otherwise. */
  latencyMs = 200;
  /** mm-time of the last DATA. */
  lastTime = 0;
  readonly counts = { packets: 0, frames: 0, decodeErrors: 0 };
  private _decoder: OpusDecoder | undefined;

  constructor(
    type: number,
    id: number,
    transport: Transport,
    queue: ByteQueue,
    options: ChannelOptions,
    private readonly _opts: PlaybackOptions = {},
  ) {
    super(type, id, transport, queue, options);
  }

  /**
   * The host reports how long until a sample handed over now is heard; the session's multimedia clock becomes
   * last DATA time − delay (spice-gtk spice_playback_channel_set_delay).
   */
  setDelay(delayMs: number): void {
    if (this.playing) this._opts.syncMmTime?.((this.lastTime - Math.max(0, Math.round(delayMs))) >>> 0);
  }

  protected async handleMessage(type: number, body: Uint8Array): Promise<void> {
    switch (type) {
      case PlaybackMsg.MODE: {
        const m = parseAudioMode(body);
        if (m.mode !== AudioMode.RAW && m.mode !== AudioMode.OPUS)
          throw new SpiceProtocolError(`${this.label}: unsupported audio mode ${m.mode}`);
        if (m.mode === AudioMode.OPUS && !this._opts.codecs?.opusDecoder)
          throw new SpiceProtocolError(`${this.label}: Opus sent, but OPUS was not announced`);
        this.mode = m.mode;
        return;
      }
      case PlaybackMsg.START: {
        this.format = parsePlaybackStart(body);
        this.playing = true;
        this.lastTime = this.format.time;
        this.latencyMs = 200;
        this._closeDecoder();
        if (this.mode === AudioMode.OPUS)
          this._decoder = this._opts.codecs!.opusDecoder!(this.format.channels, this.format.frequency);
        this._onStart.fire(this.format);
        return;
      }
      case PlaybackMsg.DATA:
        return this._data(body);
      case PlaybackMsg.STOP:
        this.playing = false;
        this._closeDecoder();
        this._onStop.fire();
        return;
      case PlaybackMsg.VOLUME:
        this.volume = parseVolume(body, 'PLAYBACK VOLUME');
        this._onVolume.fire(this.volume);
        return;
      case PlaybackMsg.MUTE:
        this.muted = parseMute(body, 'PLAYBACK MUTE');
        this._onMute.fire(this.muted);
        return;
      case PlaybackMsg.LATENCY:
        this.latencyMs = parseLatency(body);
        return;
      default:
        this.ignore(type);
    }
  }

  private async _data(body: Uint8Array): Promise<void> {
    const p = parseAudioPacket(body);
    const f = this.format;
    if (!f || !this.playing) throw new SpiceProtocolError(`${this.label}: DATA before START`);
    this.lastTime = p.time;
    this.counts.packets++;
    let samples: Int16Array;
    if (this.mode === AudioMode.RAW) {
      // Whole frames only.
      const frameBytes = 2 * f.channels;
      samples = s16FromBytes(p.data.subarray(0, p.data.length - (p.data.length % frameBytes)));
    } else {
      try {
        samples = await this._decoder!.decode(p.data);
      } catch {
        // One bad packet is a gap in the sound, not the end of the channel.
        this.counts.decodeErrors++;
        return;
      }
    }
    this.counts.frames += samples.length / f.channels;
    this._onPcm.fire({ time: p.time, samples, channels: f.channels, rate: f.frequency });
  }

  private _closeDecoder(): void {
    this._decoder?.close();
    this._decoder = undefined;
  }

  protected override onClosed(): void {
    this._closeDecoder();
    for (const e of [this._onStart, this._onStop, this._onPcm, this._onVolume, this._onMute]) e.dispose();
  }
}
