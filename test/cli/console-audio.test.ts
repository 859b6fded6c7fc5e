// `oriel console audio` against the desktop guest, through a real Oriel server (one boot): a 440 Hz tone played in
// the guest (aplay) is recorded by the client at 440 Hz (±2 %), with Opus and with raw PCM; a 1000 Hz tone the
// client sends is recorded in the guest (arecord) at 1000 Hz (±2 %). Then the same in Chromium: the web console
// receives the guest's 440 Hz (Opus through WebCodecs), and its microphone (Chromium's fake device playing a
// 700 Hz file, turned on with the Mic button, sent as Opus by a WebCodecs AudioEncoder) is recorded in the guest at
// 700 Hz.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type Browser } from 'playwright-core';
import { decodeWav, encodeWav } from '../../src/spice/audio/wav.ts';
import { ensureWebBuild, signIn } from '../web/helpers.ts';
import { startDesktopVm, type DesktopVm } from '../helpers/desktop.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../helpers/server.ts';
import { estimateTone, sine } from '../helpers/tone.ts';

const BIN = join(import.meta.dirname, '../../bin/oriel.js');

interface Run { code: number; stdout: string; stderr: string }

/** Runs the CLI; `onStderr` sees its standard error as it comes (to act once it is listening). */
function oriel(args: string[], env: NodeJS.ProcessEnv, onStderr: (all: string) => void = () => {}): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => onStderr((stderr += d)));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

function waitFor(pred: () => boolean, ms: number, what: string): Promise<void> {
  return (async () => {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await sleep(100);
    }
  })();
}

describe('oriel console audio (desktop guest)', () => {
  let t: TestServer;
  let vm: DesktopVm;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oca-'));
    t = await startTestServer();
    vm = await startDesktopVm(t, 'snd');
    env = { ORIEL_URL: t.url, ORIEL_TOKEN: t.adminToken, XDG_CONFIG_HOME: dir };
    const cards = await vm.exec(['aplay', '-l']);
    assert.match(cards.stdout, /card 0: .*device 0/i, `the guest has a sound card:\n${cards.stdout}${cards.stderr}`);
  });
  after(async () => {
    await t?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a 440 Hz tone played in the guest is recorded by the client at 440 Hz (Opus, then raw PCM)', async () => {
    await vm.agent.writeFile('/tmp/tone.wav', Buffer.from(encodeWav({ samples: sine(440, 3), channels: 2, rate: 48000 })));
    for (const mode of ['opus', 'raw'] as const) {
      const out = join(dir, `${mode}.wav`);
      let listening = false;
      const rec = oriel(['console', 'audio', 'record', 'snd', out, '--seconds', '9', '--timeout', '60',
        ...(mode === 'raw' ? ['--raw'] : [])], env, (s) => (listening ||= /recording for/.test(s)));
      await waitFor(() => listening, 60_000, 'the recorder');
      const played = await vm.exec(['aplay', '-q', '/tmp/tone.wav'], { timeoutMs: 60_000 });
      assert.equal(played.exitCode, 0, played.stderr);
      const r = await rec;
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, mode === 'opus' ? /s of sound \(Opus\)/ : /s of sound \(raw PCM\)/);
      const wav = decodeWav(new Uint8Array(readFileSync(out)));
      assert.deepEqual([wav.channels, wav.rate], [2, 48000]);
      const est = estimateTone(wav.samples, 2, 48000);
      process.stdout.write(`# ${mode}: ${est.hz.toFixed(2)} Hz, ${est.loudSeconds.toFixed(2)} s loud, peak ${est.peak}\n`);
      assert.ok(Math.abs(est.hz - 440) <= 440 * 0.02, `${mode}: recorded ${est.hz} Hz`);
      assert.ok(est.loudSeconds > 2, `${mode}: the tone lasts (${est.loudSeconds} s)`);
    }
  });

  test('a 1000 Hz tone the client sends is recorded in the guest at 1000 Hz', async () => {
    const file = join(dir, 'mic.wav');
    writeFileSync(file, encodeWav({ samples: sine(1000, 4, 44100, 1), channels: 1, rate: 44100 }));
    let waiting = false;
    const play = oriel(['console', 'audio', 'play', 'snd', file, '--timeout', '60'], env,
      (s) => (waiting ||= /waiting up to/.test(s)));
    await waitFor(() => waiting, 60_000, 'the player');
    const recorded = await vm.exec(['arecord', '-q', '-d', '6', '-f', 'S16_LE', '-r', '48000', '-c', '2', '/tmp/mic.wav'],
      { timeoutMs: 60_000 });
    assert.equal(recorded.exitCode, 0, recorded.stderr);
    const r = await play;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sent 4\.\d\d s \(Opus/);
    const wav = decodeWav(new Uint8Array(await vm.agent.readFile('/tmp/mic.wav')));
    const est = estimateTone(wav.samples, wav.channels, wav.rate);
    process.stdout.write(`# guest recorded ${est.hz.toFixed(2)} Hz, ${est.loudSeconds.toFixed(2)} s loud, peak ${est.peak}\n`);
    assert.ok(Math.abs(est.hz - 1000) <= 1000 * 0.02, `guest recorded ${est.hz} Hz`);
    assert.ok(est.loudSeconds > 2, `the tone lasts in the guest (${est.loudSeconds} s)`);
  });

  test('Chromium: the console plays the guest\'s tone and its Mic button sends the fake microphone', async () => {
    ensureWebBuild();
    const micFile = join(dir, 'fake-mic.wav');
    writeFileSync(micFile, encodeWav({ samples: sine(700, 10, 48000, 1), channels: 1, rate: 48000 }));
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: process.env.ORIEL_CHROMIUM ?? '/usr/bin/chromium',
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
          '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
          '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
          `--use-file-for-fake-audio-capture=${micFile}`],
      });
      const ctx = await browser.newContext();
      await ctx.grantPermissions(['microphone'], { origin: t.url });
      const page = await ctx.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await signIn(page, t.url, 'admin', ADMIN_PASSWORD);
      await page.goto(`${t.url}/vms/snd/console`);
      await page.waitForSelector('#console-status[data-status=connected]', { timeout: 60_000 });
      assert.equal(await page.getAttribute('#console-mic', 'data-state'), 'off', 'no microphone until asked');
      // Collect what the page decodes (channel 0) through the console's tap.
      await page.evaluate(() => {
        const w = globalThis as unknown as { orielConsole: { audio: { tap: unknown } }; pcm: number[] };
        w.pcm = [];
        w.orielConsole.audio.tap = (c: { samples: Int16Array; channels: number }) => {
          for (let i = 0; i < c.samples.length; i += c.channels) w.pcm.push(c.samples[i]!);
        };
      });
      await page.click('.spice-console'); // a user gesture: the page's audio may start
      // In server mouse mode (the guest's agent not up yet) that click locks the pointer to the console, and the
      // toolbar cannot be clicked until it is let go (Escape, for a user), as in ui.test.ts.
      await page.evaluate(() => (globalThis as unknown as { document: { exitPointerLock(): void } }).document
        .exitPointerLock());
      await sleep(1000);
      const played = await vm.exec(['aplay', '-q', '/tmp/tone.wav'], { timeoutMs: 60_000 });
      assert.equal(played.exitCode, 0, played.stderr);
      await sleep(1000);
      const got = await page.evaluate(() => {
        const w = globalThis as unknown as { orielConsole: { audio: { stats: { opus: boolean } } }; pcm: number[] };
        return { pcm: w.pcm, opus: w.orielConsole.audio.stats.opus };
      });
      const est = estimateTone(Int16Array.from(got.pcm), 1, 48000);
      process.stdout.write(`# browser (${got.opus ? 'Opus' : 'raw'}): ${est.hz.toFixed(2)} Hz, ${est.loudSeconds.toFixed(2)} s\n`);
      assert.ok(got.opus, 'the browser announced Opus (WebCodecs) and the server sent it');
      assert.ok(Math.abs(est.hz - 440) <= 440 * 0.02, `the page received ${est.hz} Hz`);
      assert.ok(est.loudSeconds > 2);

      await page.click('#console-mic');
      await page.waitForSelector('#console-mic[data-state=on]', { timeout: 20_000 });
      const rec = await vm.exec(['arecord', '-q', '-d', '5', '-f', 'S16_LE', '-r', '48000', '-c', '2', '/tmp/bmic.wav'],
        { timeoutMs: 60_000 });
      assert.equal(rec.exitCode, 0, rec.stderr);
      const wav = decodeWav(new Uint8Array(await vm.agent.readFile('/tmp/bmic.wav')));
      const mic = estimateTone(wav.samples, wav.channels, wav.rate);
      process.stdout.write(`# guest recorded the browser's mic at ${mic.hz.toFixed(2)} Hz, ${mic.loudSeconds.toFixed(2)} s\n`);
      assert.ok(Math.abs(mic.hz - 700) <= 700 * 0.02, `guest recorded ${mic.hz} Hz`);
      assert.ok(mic.loudSeconds > 2);
      type Stats = { orielConsole: { audio: { stats: { micOpus: boolean } } } };
      assert.equal(await page.evaluate(() => (globalThis as unknown as Stats).orielConsole.audio.stats.micOpus), true, 'the microphone went out as Opus (WebCodecs AudioEncoder)');
      await page.click('#console-mic');
      await page.waitForSelector('#console-mic[data-state=off]');
      assert.deepEqual(errors, []);
    } finally {
      await browser?.close();
    }
  });
});
