// Record channel (type 6): the guest's microphone. The server sends START when the guest opens its capture PCM
// and STOP when it closes it; between the two the client sends MODE and START_MARK once, then DATA packets of
// 480 frames (10 ms): raw S16LE, or one Opus packet each when the server announced OPUS and the host gave an
// encoder. Audio written while the guest is not recording is dropped (spice-server would drop it too).
import { SpiceChannel, type ChannelOptions } from '../channel.ts';
import { hasCap } from '../caps.ts';
import { Emitter, type Event } from '../emitter.ts';
import { SpiceInputError } from '../proto/errors.ts';
import type { ByteQueue, Transport } from '../transport.ts';
import type { AudioCodecs, OpusEncoder } from './audio-codec.ts';
import {
  AUDIO_CHANNELS, AUDIO_RATE, AudioMode, FRAMES_PER_PACKET, RecordCap, RecordMsg, RecordMsgc, bytesFromS16,
  parseMute, parseRecordStart, parseVolume, serializeAudioPacket, serializeRecordMode, serializeStartMark,
  type AudioFormat,
} from './audio-wire.ts';

/** The link caps (bit numbers, as LinkParams takes them). */
export function recordClientCaps(codecs: AudioCodecs = {}): number[] {
  const bits: number[] = [RecordCap.VOLUME];
  if (codecs.opusEncoder) bits.push(RecordCap.OPUS);
  return bits;
}

export interface RecordOptions {
  codecs?: AudioCodecs;
  serverCaps?: number[];
  /** The session's multimedia clock (ms), stamped on packets. */
  mmTime?: () => number;
}

export class RecordChannel extends SpiceChannel {
  private readonly _onStart = new Emitter<AudioFormat>();
  /** The guest opened its capture device: audio written now is heard. */
  readonly onStart: Event<AudioFormat> = this._onStart.event;
  private readonly _onStop = new Emitter<void>();
  readonly onStop: Event<void> = this._onStop.event;
  private readonly _onVolume = new Emitter<number[]>();
  readonly onVolume: Event<number[]> = this._onVolume.event;
  private readonly _onMute = new Emitter<boolean>();
  readonly onMute: Event<boolean> = this._onMute.event;

  format: AudioFormat | undefined;
  recording = false;
  volume: number[] = [];
  muted = false;
  /** AudioMode used for the current recording. */
  mode: number = AudioMode.RAW;
  readonly counts = { packets: 0, frames: 0, dropped: 0 };
  private _encoder: OpusEncoder | undefined;
  private _marked = false;
  /** Samples waiting to fill a 480-frame packet. */
  private _pending = new Int16Array(FRAMES_PER_PACKET * AUDIO_CHANNELS);
  private _pendingLen = 0;
  /** Keeps async encodes in order. */
  private _chain: Promise<void> = Promise.resolve();

  constructor(
    type: number,
    id: number,
    transport: Transport,
    queue: ByteQueue,
    options: ChannelOptions,
    private readonly _opts: RecordOptions = {},
  ) {
    super(type, id, transport, queue, options);
  }

  /** Whether recordings use Opus (the server can decode it and the host gave an encoder). */
  get opus(): boolean {
    return !!this._opts.codecs?.opusEncoder && hasCap(this._opts.serverCaps ?? [], RecordCap.OPUS);
  }

  /**
   * Sends interleaved S16 samples at the guest's format (from START; 48 kHz stereo with spice-server). Returns
   * false, dropping them, while the guest is not recording. Pace it in real time: the server keeps ~170 ms.
   */
  write(samples: Int16Array): boolean {
    const f = this.format;
    if (!this.recording || !f || this.closed) {
      this.counts.dropped += samples.length;
      return false;
    }
    if (samples.length % f.channels) throw new SpiceInputError(`samples must be whole frames of ${f.channels}`);
    let at = 0;
    while (at < samples.length) {
      const n = Math.min(samples.length - at, this._pending.length - this._pendingLen);
      this._pending.set(samples.subarray(at, at + n), this._pendingLen);
      this._pendingLen += n;
      at += n;
      if (this._pendingLen === this._pending.length) {
        this._packet(this._pending);
        this._pending = new Int16Array(this._pending.length);
        this._pendingLen = 0;
      }
    }
    return true;
  }

  /** Resolves once every packet written so far has been encoded and sent. */
  flushed(): Promise<void> {
    return this._chain;
  }

  private _packet(pcm: Int16Array): void {
    const time = this._opts.mmTime?.() ?? 0;
    if (!this._marked) {
      // spice-gtk record: MODE then START_MARK once per recording, before the first DATA.
      this.send(RecordMsgc.MODE, serializeRecordMode(time, this.mode));
      this.send(RecordMsgc.START_MARK, serializeStartMark(time));
      this._marked = true;
    }
    this.counts.frames += pcm.length / (this.format?.channels ?? AUDIO_CHANNELS);
    const enc = this._encoder;
    if (!enc) {
      this.counts.packets++;
      this.send(RecordMsgc.DATA, serializeAudioPacket(time, bytesFromS16(pcm)));
      return;
    }
    this._chain = this._chain.then(async () => {
      const packet = await enc.encode(pcm);
      if (!this.recording || this._encoder !== enc) return;
      this.counts.packets++;
      this.send(RecordMsgc.DATA, serializeAudioPacket(time, packet));
    }).catch(() => { this.counts.dropped += pcm.length; });
  }

  protected handleMessage(type: number, body: Uint8Array): void {
    switch (type) {
      case RecordMsg.START: {
        const f = parseRecordStart(body);
        this._end();
        this.format = f;
        this._pending = new Int16Array(FRAMES_PER_PACKET * f.channels);
        // Opus at spice-server's rate only (it decodes at 48 kHz).
        this.mode = this.opus && f.frequency === AUDIO_RATE ? AudioMode.OPUS : AudioMode.RAW;
        if (this.mode === AudioMode.OPUS) this._encoder = this._opts.codecs!.opusEncoder!(f.channels, f.frequency);
        this.recording = true;
        this._onStart.fire(f);
        return;
      }
      case RecordMsg.STOP:
        this._end();
        this._onStop.fire();
        return;
      case RecordMsg.VOLUME:
        this.volume = parseVolume(body, 'RECORD VOLUME');
        this._onVolume.fire(this.volume);
        return;
      case RecordMsg.MUTE:
        this.muted = parseMute(body, 'RECORD MUTE');
        this._onMute.fire(this.muted);
        return;
      default:
        this.ignore(type);
    }
  }

  private _end(): void {
    this.recording = false;
    this._marked = false;
    this._pendingLen = 0;
    const enc = this._encoder;
    this._encoder = undefined;
    if (enc) this._chain = this._chain.then(() => enc.close(), () => enc.close());
  }

  protected override onClosed(): void {
    this._end();
    for (const e of [this._onStart, this._onStop, this._onVolume, this._onMute]) e.dispose();
  }
}
