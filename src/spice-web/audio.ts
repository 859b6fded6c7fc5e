// The console's sound: the guest's playback through Web Audio (buffers scheduled back to back, a little ahead of
// the clock; the output delay goes back to the session's multimedia clock), and the microphone into the guest's
// record channel (Opus by WebCodecs when the server takes it, audio-codecs.ts). Muting is this page's (remembered);
// the microphone is asked for only when its button is pressed, and sends only while a program in the guest records.
// The page's AudioContext can only start after a user gesture: the first key or click on the page resumes it.
import {
  AudioMode, ChannelType, type Disposable, type PcmChunk, type PlaybackChannel, type RecordChannel, type SpiceSession,
} from '../spice/index.ts';

const MUTED_KEY = 'oriel.console.muted';
/** Audio is scheduled at least this far ahead (s): covers packets that come late over the network. */
const MIN_AHEAD_S = 0.08;
/** More than this ahead (s) and the queue is cut: latency would only grow. */
const MAX_AHEAD_S = 0.5;
const MIC_FRAMES = 2048;

export type MicState = 'off' | 'asking' | 'on' | 'denied' | 'error';

export class ConsoleAudio {
  muted = loadMuted();
  mic: MicState = 'off';
  micMessage = '';
  /** Counters for tests and the status line. */
  readonly stats = { chunks: 0, frames: 0, micFrames: 0, dropped: 0, opus: false, micOpus: false };
  /** Sees every decoded chunk before it is played (tests check what the page received). */
  tap: ((c: PcmChunk) => void) | undefined;
  private _ctx: AudioContext | undefined;
  private _gain: GainNode | undefined;
  private _next = 0;
  private _guestGain = 1;
  private _guestMuted = false;
  private _session: SpiceSession | undefined;
  private _subs: Disposable[] = [];
  private _micStream: MediaStream | undefined;
  private _micNodes: AudioNode[] = [];
  /** The microphone's own context, at the device's rate (a MediaStream source cannot always be resampled). */
  private _micCtx: AudioContext | undefined;
  private readonly _resume = () => void this._context().resume().catch(() => undefined);

  constructor(private readonly _onChange: () => void = () => {}) {
    for (const ev of ['pointerdown', 'keydown']) document.addEventListener(ev, this._resume, { capture: true });
  }

  /** Follows the console's session (undefined: none now). */
  attach(session: SpiceSession | undefined): void {
    for (const s of this._subs.splice(0)) s.dispose();
    this._session = session;
    if (!session) return;
    void session.whenChannel<PlaybackChannel>(ChannelType.PLAYBACK).then((pb) => {
      if (this._session !== session) return;
      this._subs.push(
        pb.onPcm((c) => this._play(pb, c)),
        pb.onStart(() => (this._next = 0)),
        pb.onVolume((v) => {
          this._guestGain = v.length ? v.reduce((a, b) => a + b, 0) / v.length / 65535 : 1;
          this._applyGain();
        }),
        pb.onMute((m) => {
          this._guestMuted = m;
          this._applyGain();
        }),
      );
    });
  }

  setMuted(muted: boolean): void {
    this.muted = muted;
    try { localStorage.setItem(MUTED_KEY, muted ? '1' : '0'); } catch { /* storage blocked */ }
    this._applyGain();
    if (!muted) this._resume();
    this._onChange();
  }

  /** Turns the microphone on (asking the browser's permission the first time) or off. */
  async toggleMic(): Promise<void> {
    if (this.mic === 'on' || this.mic === 'asking') {
      this._stopMic();
      return;
    }
    this.mic = 'asking';
    this._onChange();
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        // What the microphone hears, unprocessed (as spice-gtk sends it): programs in the guest may process it.
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
      if (this.mic !== 'asking') {
        for (const t of stream.getTracks()) t.stop();
        return;
      }
      this._startMic(stream);
    } catch (e) {
      const name = (e as DOMException).name;
      this.mic = name === 'NotAllowedError' ? 'denied' : 'error';
      this.micMessage = name === 'NotAllowedError'
        ? 'The browser did not allow the microphone' : `No microphone: ${(e as Error).message}`;
      this._onChange();
    }
  }

  dispose(): void {
    this.attach(undefined);
    this._stopMic();
    for (const ev of ['pointerdown', 'keydown']) document.removeEventListener(ev, this._resume, { capture: true });
    void this._ctx?.close().catch(() => undefined);
    this._ctx = undefined;
  }

  private _context(): AudioContext {
    if (!this._ctx) {
      this._ctx = new AudioContext({ sampleRate: 48000, latencyHint: 'interactive' });
      this._gain = this._ctx.createGain();
      this._gain.connect(this._ctx.destination);
      this._applyGain();
    }
    return this._ctx;
  }

  private _applyGain(): void {
    if (this._gain) this._gain.gain.value = this.muted || this._guestMuted ? 0 : this._guestGain;
  }

  private _play(pb: PlaybackChannel, c: PcmChunk): void {
    this.stats.chunks++;
    this.stats.opus = pb.mode === AudioMode.OPUS;
    this.tap?.(c);
    const ctx = this._context();
    const frames = c.samples.length / c.channels;
    this.stats.frames += frames;
    if (ctx.state !== 'running' || frames === 0) {
      this.stats.dropped += frames;
      return;
    }
    const buf = ctx.createBuffer(c.channels, frames, c.rate);
    for (let ch = 0; ch < c.channels; ch++) {
      const out = buf.getChannelData(ch);
      for (let i = 0; i < frames; i++) out[i] = c.samples[i * c.channels + ch]! / 32768;
    }
    const now = ctx.currentTime;
    if (this._next < now + MIN_AHEAD_S || this._next > now + MAX_AHEAD_S) this._next = now + MIN_AHEAD_S;
    const src = ctx.createBufferSource();
    src.buffer = buf;
    src.connect(this._gain!);
    src.start(this._next);
    this._next += buf.duration;
    // This chunk is heard after what is queued plus the device's own latency.
    pb.setDelay((this._next - buf.duration - now + (ctx.outputLatency || ctx.baseLatency || 0)) * 1000);
  }

  private _startMic(stream: MediaStream): void {
    const ctx = (this._micCtx = new AudioContext());
    void ctx.resume().catch(() => undefined);
    const source = ctx.createMediaStreamSource(stream);
    // ScriptProcessorNode: deprecated, but needs no worklet module (the page's CSP allows only its own scripts).
    const proc = ctx.createScriptProcessor(MIC_FRAMES, 1, 1);
    proc.onaudioprocess = (e) => this._micData(e.inputBuffer);
    const sink = ctx.createGain();
    sink.gain.value = 0; // the processor must reach the destination to run; nothing is heard
    source.connect(proc);
    proc.connect(sink);
    sink.connect(ctx.destination);
    this._micStream = stream;
    this._micNodes = [source, proc, sink];
    this.mic = 'on';
    this.micMessage = '';
    this._onChange();
  }

  private _micData(input: AudioBuffer): void {
    const rec = this._session?.channels.get('record:0') as RecordChannel | undefined;
    if (!rec?.recording || !rec.format) return;
    const { channels, frequency } = rec.format;
    const data = input.getChannelData(0);
    // The device's rate to the guest's (48 kHz with spice-server), linearly.
    const ratio = input.sampleRate / frequency;
    const frames = Math.floor(data.length / ratio);
    const out = new Int16Array(frames * channels);
    for (let i = 0; i < frames; i++) {
      const pos = i * ratio;
      const k = Math.floor(pos);
      const t = pos - k;
      const s = data[k]! * (1 - t) + (data[Math.min(k + 1, data.length - 1)]! * t);
      const v = Math.max(-1, Math.min(1, s));
      for (let c = 0; c < channels; c++) out[i * channels + c] = Math.round(v * 32767);
    }
    if (rec.write(out)) this.stats.micFrames += frames;
    this.stats.micOpus = rec.mode === AudioMode.OPUS;
  }

  private _stopMic(): void {
    for (const t of this._micStream?.getTracks() ?? []) t.stop();
    for (const n of this._micNodes) n.disconnect();
    this._micNodes = [];
    this._micStream = undefined;
    void this._micCtx?.close().catch(() => undefined);
    this._micCtx = undefined;
    if (this.mic !== 'off') {
      this.mic = 'off';
      this._onChange();
    }
  }
}

function loadMuted(): boolean {
  try {
    return localStorage.getItem(MUTED_KEY) === '1';
  } catch {
    return false;
  }
}
