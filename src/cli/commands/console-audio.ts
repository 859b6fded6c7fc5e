// oriel console audio record|play TARGET FILE: the VM's sound through SPICE, headless. `record` saves what the
// guest plays (the playback channel) as a WAV file; `play` sends a WAV file into the guest's microphone (the record
// channel) while a guest program records. Opus both ways (opusscript) unless --raw; raw S16LE 48 kHz otherwise.
import { readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { nodeOpusCodecs } from '../../spice-node/opus.ts';
import { convertPcm, decodeWav, encodeWav } from '../../spice/audio/wav.ts';
import type { PcmChunk, PlaybackChannel } from '../../spice/channels/playback.ts';
import type { RecordChannel } from '../../spice/channels/record.ts';
import type { AudioCodecs } from '../../spice/channels/audio-codec.ts';
import { SpiceInputError } from '../../spice/proto/errors.ts';
import { AudioMode, ChannelType, nextEvent, type SpiceSession } from '../../spice/index.ts';
import { CliError } from '../api.ts';

interface AudioOptions { password?: string; timeout: number; raw?: boolean }
/** console.ts's session runner (no overall timeout: these commands bound their own waits). */
export type AudioSessionRunner = (
  target: string,
  o: AudioOptions & { audio?: AudioCodecs },
  fn: (s: SpiceSession) => Promise<void>,
  channelTypes: number[],
) => Promise<void>;

/** How far ahead of real time `play` sends: under the ~170 ms the server keeps, over one timer tick's jitter. */
const LEAD_MS = 80;
const TICK_MS = 10;

export function consoleAudioCommands(
  consoleCmd: Command,
  common: (c: Command) => Command,
  run: AudioSessionRunner,
): void {
  const audio = consoleCmd
    .command('audio')
    .description("the VM's sound: record what it plays, play into its microphone (needs a sound card in the VM)");

  common(audio.command('record <target> <file>')
    .description('save what the guest plays as a 48 kHz WAV file')
    .requiredOption('--seconds <n>', 'how long to listen', seconds)
    .option('--raw', 'ask for raw PCM instead of Opus'))
    .action(async (target: string, file: string, o: AudioOptions & { seconds: number }) => {
      const codecs = o.raw ? {} : await nodeOpusCodecs();
      await run(target, { ...o, audio: codecs }, async (session) => {
        const pb = await channel<PlaybackChannel>(session, ChannelType.PLAYBACK, o.timeout, 'playback');
        const chunks: Int16Array[] = [];
        let format: { channels: number; rate: number } | undefined;
        let next: number | undefined; // mm-time where the next chunk should start
        let frames = 0;
        const add = (c: PcmChunk) => {
          format ??= { channels: c.channels, rate: c.rate };
          if (c.channels !== format.channels || c.rate !== format.rate) return; // spice-server never changes it
          // A pause in the guest's sound (its PCM closed, or an underrun) becomes silence of the same length.
          const gap = next === undefined ? 0 : ((c.time - next) | 0);
          if (gap > 20 && gap < o.seconds * 1000) {
            const n = Math.round((gap * format.rate) / 1000);
            chunks.push(new Int16Array(n * format.channels));
            frames += n;
          }
          chunks.push(c.samples.slice());
          frames += c.samples.length / c.channels;
          next = (c.time + Math.round(((c.samples.length / c.channels) * 1000) / c.rate)) >>> 0;
        };
        const sub = pb.onPcm(add);
        console.error(`recording for ${o.seconds} s`);
        await sleep(o.seconds * 1000);
        sub.dispose();
        const f = format ?? { channels: 2, rate: 48000 };
        const all = new Int16Array(chunks.reduce((n, c) => n + c.length, 0));
        let at = 0;
        for (const c of chunks) {
          all.set(c, at);
          at += c.length;
        }
        writeFileSync(file, encodeWav({ samples: all, channels: f.channels, rate: f.rate }));
        const heard = pb.counts.packets
          ? `${(frames / f.rate).toFixed(2)} s of sound (${pb.mode === AudioMode.OPUS ? 'Opus' : 'raw PCM'})`
          : 'no sound (the guest played nothing)';
        console.log(`wrote ${file}: ${heard}, ${f.channels} ch, ${f.rate} Hz`);
      }, [ChannelType.PLAYBACK]);
    });

  common(audio.command('play <target> <file>')
    .description("send a 16-bit PCM WAV file into the guest's microphone once a guest program records")
    .option('--raw', 'send raw PCM instead of Opus'))
    .action(async (target: string, file: string, o: AudioOptions) => {
      let wav;
      try {
        wav = decodeWav(new Uint8Array(readFileSync(file)));
      } catch (e) {
        if (e instanceof SpiceInputError) throw new CliError(`${file}: ${e.message}`);
        throw new CliError((e as Error).message);
      }
      const codecs = o.raw ? {} : await nodeOpusCodecs();
      await run(target, { ...o, audio: codecs }, async (session) => {
        const rec = await channel<RecordChannel>(session, ChannelType.RECORD, o.timeout, 'record');
        if (!rec.recording) {
          console.error(`waiting up to ${o.timeout} s for a program in the guest to record`);
          const started = await Promise.race([
            nextEvent(rec.onStart).then(() => true),
            sleep(o.timeout * 1000, false, { ref: false }), // unref'd: the command exits once it is done
          ]);
          if (!started) throw new CliError(`${target}: nothing in the guest recorded within ${o.timeout} s`);
        }
        const f = rec.format!;
        const pcm = convertPcm(wav, f.channels, f.frequency).samples;
        const perMs = (f.frequency * f.channels) / 1000;
        let stopped = false;
        const sub = rec.onStop(() => (stopped = true));
        const t0 = Date.now();
        let sent = 0;
        while (sent < pcm.length && !stopped && !rec.closed) {
          const due = Math.min(pcm.length, Math.floor((Date.now() - t0 + LEAD_MS) * perMs / f.channels) * f.channels);
          if (due > sent) {
            rec.write(pcm.subarray(sent, due));
            sent = due;
          }
          await sleep(TICK_MS);
        }
        sub.dispose();
        await rec.flushed();
        await sleep(LEAD_MS + 200); // the last packets leave the socket and are read by the guest
        const secs = (sent / f.channels / f.frequency).toFixed(2);
        if (sent < pcm.length) console.error(`the guest stopped recording after ${secs} s of the file`);
        console.log(`sent ${secs} s (${rec.mode === AudioMode.OPUS ? 'Opus' : 'raw PCM'}, ${f.channels} ch, ${f.frequency} Hz)`);
      }, [ChannelType.RECORD]);
    });
}

/** The sound channel, or a clear error when the VM has none within the timeout. */
async function channel<T>(session: SpiceSession, type: number, timeoutS: number, name: string): Promise<T> {
  const c = await Promise.race([session.whenChannel(type), sleep(timeoutS * 1000, undefined, { ref: false })]);
  if (!c) throw new CliError(`no ${name} channel within ${timeoutS} s: does the VM have a sound card?`);
  return c as T;
}

function seconds(v: string): number {
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0 || Number(v) > 3600)
    throw new CliError(`--seconds takes a number of seconds from 0 to 3600, not '${v}'`);
  return Number(v);
}
