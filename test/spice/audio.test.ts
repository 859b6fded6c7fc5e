// Sound channels without a server: the playback and record messages parsed and serialised byte for byte, the
// caps each side announces, the channels driven through a fake wire (raw PCM and Opus through opusscript), the
// multimedia-clock sync, WAV files and rate conversion, and the tone estimate the guest test relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AudioMode, PlaybackCap, PlaybackMsg, RecordCap, RecordMsg, RecordMsgc, parseAudioMode, parseAudioPacket, parseLatency,
  parseMute, parsePlaybackStart, parseRecordStart, parseVolume, serializeAudioPacket, serializeRecordMode,
  serializeStartMark,
} from '../../src/spice/channels/audio-wire.ts';
import { PlaybackChannel, playbackClientCaps, type PcmChunk } from '../../src/spice/channels/playback.ts';
import { RecordChannel, recordClientCaps } from '../../src/spice/channels/record.ts';
import { capsFromBits, hasCap } from '../../src/spice/caps.ts';
import { LINK_HEADER_SIZE, decodeLinkMess, encodeLinkMess } from '../../src/spice/link.ts';
import { convertPcm, decodeWav, encodeWav } from '../../src/spice/audio/wav.ts';
import { SpiceInputError, SpiceProtocolError } from '../../src/spice/proto/errors.ts';
import { Writer } from '../../src/spice/proto/writer.ts';
import { nodeOpusCodecs } from '../../src/spice-node/opus.ts';
import { FakeWire, tick } from './helpers/fake.ts';
import { estimateTone, sine } from '../helpers/tone.ts';

const OPTS = { maxMessageSize: 1 << 20, lookup: () => undefined };
const start = (ch = 2, fmt = 1, hz = 48000, time = 1000) => new Writer().u32(ch).u16(fmt).u32(hz).u32(time).finish();
const bytes = (s: Int16Array) => new Uint8Array(s.buffer, s.byteOffset, s.byteLength);

test('playback messages: START, DATA, MODE, VOLUME, MUTE, LATENCY parse; bad ones are protocol errors', () => {
  assert.deepEqual(parsePlaybackStart(start(2, 1, 48000, 77)), { channels: 2, format: 1, frequency: 48000, time: 77 });
  assert.deepEqual(parseRecordStart(new Writer().u32(1).u16(1).u32(44100).finish()),
    { channels: 1, format: 1, frequency: 44100 });
  const data = parseAudioPacket(Uint8Array.of(5, 0, 0, 0, 9, 8, 7));
  assert.equal(data.time, 5);
  assert.deepEqual([...data.data], [9, 8, 7]);
  const mode = parseAudioMode(Uint8Array.of(1, 1, 0, 0, 3, 0));
  assert.deepEqual({ time: mode.time, mode: mode.mode, n: mode.data.length },
    { time: 257, mode: AudioMode.OPUS, n: 0 });
  assert.deepEqual(parseVolume(Uint8Array.of(2, 0xff, 0xff, 0x01, 0x01)), [65535, 257]);
  assert.equal(parseMute(Uint8Array.of(1)), true);
  assert.equal(parseMute(Uint8Array.of(0)), false);
  assert.equal(parseLatency(Uint8Array.of(0xc8, 0, 0, 0)), 200);
  assert.throws(() => parsePlaybackStart(start().subarray(0, 13)), SpiceProtocolError);
  assert.throws(() => parsePlaybackStart(start(2, 2)), /sample format 2/);
  assert.throws(() => parsePlaybackStart(start(0)), /0 channels/);
  assert.throws(() => parsePlaybackStart(start(2, 1, 0)), /rate 0/);
  assert.throws(() => parseVolume(Uint8Array.of(3, 1, 0, 2, 0)), SpiceProtocolError);
  assert.throws(() => parseMute(new Uint8Array(0)), SpiceProtocolError);
});

test('record messages serialise as spice.proto lays them out', () => {
  assert.deepEqual([...serializeRecordMode(0x01020304, AudioMode.RAW)], [4, 3, 2, 1, 1, 0]);
  assert.deepEqual([...serializeRecordMode(1, AudioMode.OPUS, Uint8Array.of(7))], [1, 0, 0, 0, 3, 0, 7]);
  assert.deepEqual([...serializeStartMark(0xaabbccdd)], [0xdd, 0xcc, 0xbb, 0xaa]);
  assert.deepEqual([...serializeAudioPacket(2, Uint8Array.of(1, 2))], [2, 0, 0, 0, 1, 2]);
});

test('caps: VOLUME and LATENCY always; OPUS only with a codec from the host, as the link message carries them', async () => {
  const codecs = await nodeOpusCodecs();
  // What the server reads: the channel caps words of the link message the session sends.
  const linked = (type: number, caps: number[]) => {
    const mess = decodeLinkMess(encodeLinkMess({ connectionId: 1, channelType: type, channelId: 0, channelCaps: caps })
      .subarray(LINK_HEADER_SIZE));
    return [0, 1, 2, 3, 4].filter((b) => hasCap(mess.channelCaps, b));
  };
  assert.deepEqual(linked(5, playbackClientCaps()), [PlaybackCap.VOLUME, PlaybackCap.LATENCY]);
  assert.deepEqual(linked(5, playbackClientCaps(codecs)), [PlaybackCap.VOLUME, PlaybackCap.LATENCY, PlaybackCap.OPUS]);
  assert.deepEqual(linked(6, recordClientCaps()), [RecordCap.VOLUME]);
  assert.deepEqual(linked(6, recordClientCaps(codecs)), [RecordCap.VOLUME, RecordCap.OPUS]);
});

function playback(opus = false, codecs?: Awaited<ReturnType<typeof nodeOpusCodecs>>) {
  const wire = new FakeWire();
  const synced: number[] = [];
  const ch = new PlaybackChannel(5, 0, wire.transport, wire.queue, OPTS, {
    codecs: opus ? codecs : {},
    syncMmTime: (t) => synced.push(t),
  });
  let error: Error | undefined;
  ch.onClose((e) => (error = e));
  const pcm: PcmChunk[] = [];
  ch.onPcm((c) => pcm.push(c));
  const done = ch.run();
  return { wire, ch, pcm, synced, done, error: () => error };
}

test('playback, raw: START, VOLUME, MUTE, LATENCY, DATA as samples in order, STOP; mm-time follows DATA − delay', async () => {
  const p = playback();
  const started: unknown[] = [];
  p.ch.onStart((s) => started.push(s));
  p.wire.push(PlaybackMsg.MODE, serializeRecordMode(0, AudioMode.RAW));
  p.wire.push(PlaybackMsg.START, start(2, 1, 48000, 1000));
  p.wire.push(PlaybackMsg.VOLUME, Uint8Array.of(2, 0, 0x80, 0, 0x80));
  p.wire.push(PlaybackMsg.MUTE, Uint8Array.of(1));
  p.wire.push(PlaybackMsg.LATENCY, Uint8Array.of(100, 0, 0, 0));
  const tone = sine(440, 0.02);
  p.wire.push(PlaybackMsg.DATA, serializeAudioPacket(1000, bytes(tone.subarray(0, 960))));
  // An odd trailing byte (half a frame) is dropped, not an error.
  p.wire.push(PlaybackMsg.DATA, serializeAudioPacket(1010, Uint8Array.of(...bytes(tone.subarray(960)), 1)));
  await tick();
  assert.equal(p.error(), undefined);
  assert.deepEqual(started, [{ channels: 2, format: 1, frequency: 48000, time: 1000 }]);
  assert.deepEqual(p.ch.volume, [0x8000, 0x8000]);
  assert.equal(p.ch.muted, true);
  assert.equal(p.ch.latencyMs, 100);
  assert.deepEqual(p.pcm.map((c) => c.time), [1000, 1010]);
  assert.deepEqual([...p.pcm[0]!.samples, ...p.pcm[1]!.samples], [...tone]);
  p.ch.setDelay(250);
  assert.deepEqual(p.synced, [760]);
  let stopped = false;
  p.ch.onStop(() => (stopped = true));
  p.wire.push(PlaybackMsg.STOP);
  await tick();
  assert.ok(stopped && !p.ch.playing);
  p.ch.setDelay(10); // not playing: the clock is the main channel's again
  assert.deepEqual(p.synced, [760]);
  p.ch.close();
});

test('playback: DATA before START, an unknown mode, or Opus that was not announced end the channel', async () => {
  for (const [type, body, re] of [
    [PlaybackMsg.DATA, serializeAudioPacket(0, new Uint8Array(4)), /DATA before START/],
    [PlaybackMsg.MODE, serializeRecordMode(0, AudioMode.CELT_0_5_1), /unsupported audio mode 2/],
    [PlaybackMsg.MODE, serializeRecordMode(0, AudioMode.OPUS), /OPUS was not announced/],
  ] as const) {
    const p = playback();
    p.wire.push(type, body);
    await p.done;
    assert.ok(p.error() instanceof SpiceProtocolError, String(p.error()));
    assert.match(p.error()!.message, re);
  }
});

test('playback, Opus: packets decode to the tone; a corrupt packet is a counted gap', async () => {
  const codecs = await nodeOpusCodecs();
  const p = playback(true, codecs);
  p.wire.push(PlaybackMsg.MODE, serializeRecordMode(0, AudioMode.OPUS));
  p.wire.push(PlaybackMsg.START, start());
  const enc = codecs.opusEncoder!(2, 48000);
  const tone = sine(440, 1);
  for (let f = 0; f < 100; f++) {
    const pkt = await enc.encode(tone.subarray(f * 960, (f + 1) * 960));
    assert.ok(pkt.length <= 480, `packet of ${pkt.length} bytes`);
    p.wire.push(PlaybackMsg.DATA, serializeAudioPacket(f * 10, pkt));
  }
  p.wire.push(PlaybackMsg.DATA, serializeAudioPacket(2000, Uint8Array.of(0xff, 0xff, 0xff)));
  await tick();
  enc.close();
  assert.equal(p.error(), undefined);
  assert.equal(p.pcm.length, 100);
  const all = Int16Array.from(p.pcm.flatMap((c) => [...c.samples]));
  const est = estimateTone(all, 2, 48000);
  assert.ok(Math.abs(est.hz - 440) < 440 * 0.01, `decoded ${est.hz} Hz`);
  assert.ok(p.ch.counts.decodeErrors <= 1);
  p.ch.close();
});

function record(serverOpus: boolean, codecs = {}) {
  const wire = new FakeWire();
  const ch = new RecordChannel(6, 0, wire.transport, wire.queue, OPTS, {
    codecs, serverCaps: capsFromBits(serverOpus ? [1, 2] : [1]), mmTime: () => 4242,
  });
  void ch.run();
  return { wire, ch };
}

test('record, raw: dropped until START; MODE and START_MARK once, then 480-frame DATA; STOP starts over', async () => {
  const r = record(false);
  assert.equal(r.ch.write(sine(440, 0.01)), false);
  r.wire.push(RecordMsg.START, new Writer().u32(2).u16(1).u32(48000).finish());
  r.wire.push(RecordMsg.VOLUME, Uint8Array.of(2, 1, 0, 2, 0));
  r.wire.push(RecordMsg.MUTE, Uint8Array.of(0));
  await tick();
  assert.deepEqual(r.ch.volume, [1, 2]);
  const tone = sine(440, 1000 / 48000); // 1000 frames: two packets, 40 frames left waiting
  assert.equal(r.ch.write(tone), true);
  assert.throws(() => r.ch.write(new Int16Array(3)), SpiceInputError);
  let m = r.wire.messages();
  assert.deepEqual(m.map(([t]) => t), [RecordMsgc.MODE, RecordMsgc.START_MARK, RecordMsgc.DATA, RecordMsgc.DATA]);
  assert.deepEqual([...m[0]![1]], [...serializeRecordMode(4242, AudioMode.RAW)]);
  assert.deepEqual([...m[1]![1]], [...serializeStartMark(4242)]);
  const d1 = parseAudioPacket(m[2]![1]);
  assert.equal(d1.time, 4242);
  assert.deepEqual([...d1.data], [...bytes(tone.subarray(0, 960))]);
  assert.deepEqual([...parseAudioPacket(m[3]![1]).data], [...bytes(tone.subarray(960, 1920))]);
  r.wire.push(RecordMsg.STOP);
  await tick();
  assert.equal(r.ch.write(tone), false);
  r.wire.written.length = 0;
  r.wire.push(RecordMsg.START, new Writer().u32(2).u16(1).u32(48000).finish());
  await tick();
  r.ch.write(tone.subarray(0, 960));
  m = r.wire.messages();
  assert.deepEqual(m.map(([t]) => t), [RecordMsgc.MODE, RecordMsgc.START_MARK, RecordMsgc.DATA]);
  r.ch.close();
});

test('record, Opus: only when the server announced it; packets decode back to the tone', async () => {
  const codecs = await nodeOpusCodecs();
  const startMsg = new Writer().u32(2).u16(1).u32(48000).finish();
  const noOpus = record(false, codecs);
  noOpus.wire.push(RecordMsg.START, startMsg);
  await tick();
  assert.equal(noOpus.ch.mode, AudioMode.RAW);
  noOpus.ch.close();

  const r = record(true, codecs);
  r.wire.push(RecordMsg.START, startMsg);
  await tick();
  assert.equal(r.ch.mode, AudioMode.OPUS);
  r.ch.write(sine(440, 0.5));
  await r.ch.flushed();
  const m = r.wire.messages();
  assert.deepEqual(parseAudioMode(m[0]![1], 'MODE').mode, AudioMode.OPUS);
  const data = m.filter(([t]) => t === RecordMsgc.DATA);
  assert.equal(data.length, 50);
  const dec = codecs.opusDecoder!(2, 48000);
  const out = await Promise.all(data.map(async ([, b]) => {
    const pcm = await dec.decode(parseAudioPacket(b).data);
    assert.equal(pcm.length, 960, 'each packet decodes to 480 frames, what spice-server can take');
    return [...pcm];
  }));
  dec.close();
  const est = estimateTone(Int16Array.from(out.flat()), 2, 48000);
  assert.ok(Math.abs(est.hz - 440) < 4.4, `decoded ${est.hz} Hz`);
  r.ch.close();
});

test('WAV: 16-bit PCM round-trips; other formats and non-WAV are refused; conversion keeps the pitch', () => {
  const tone = sine(1000, 0.5, 44100, 1);
  const back = decodeWav(encodeWav({ samples: tone, channels: 1, rate: 44100 }));
  assert.deepEqual({ ch: back.channels, rate: back.rate }, { ch: 1, rate: 44100 });
  assert.deepEqual([...back.samples], [...tone]);
  const wav = encodeWav({ samples: tone, channels: 1, rate: 44100 });
  new DataView(wav.buffer).setUint16(34, 8, true);
  assert.throws(() => decodeWav(wav), /only 16-bit PCM/);
  assert.throws(() => decodeWav(new TextEncoder().encode('hello world, not audio')), /not a WAV file/);
  assert.throws(() => decodeWav(encodeWav({ samples: tone, channels: 1, rate: 44100 }).subarray(0, 30)), /truncated fmt/);
  const conv = convertPcm(back, 2, 48000);
  assert.equal(conv.samples.length, 2 * Math.floor((tone.length * 48000) / 44100));
  assert.ok(Math.abs(estimateTone(conv.samples, 2, 48000).hz - 1000) < 5);
  assert.equal(conv.samples[100], conv.samples[101], 'mono is copied to both channels');
});

test('tone estimate: pauses in the tone do not lower the frequency', () => {
  const a = sine(440, 0.3);
  const withGap = Int16Array.from([...a, ...new Int16Array(2 * 4800), ...a]);
  const est = estimateTone(withGap, 2, 48000);
  assert.ok(Math.abs(est.hz - 440) < 2, `${est.hz}`);
  assert.equal(estimateTone(new Int16Array(1000), 2, 48000).hz, 0);
});
