// Sound latency on the desktop guest (TCG): from a key press at the client to the first non-silent audio back at the
// client, in ms. The guest's xterm holds `aplay /tmp/tone.wav` typed and waiting; the client presses Enter (SPICE
// inputs), the guest starts playing, spice-server sends the sound on the playback channel, the client decodes it —
// the whole round trip a person hears after a click. For Oriel's Node client (Opus, then raw PCM) and Oriel's
// browser console in Chromium (Opus by WebCodecs; the press is timed by the page's keydown, the sound by the
// console's decoded-audio tap), in one run, through Oriel's console proxy. No peer client is measured: spice-gtk's
// `spicy` and remote-viewer cannot be scripted to press a key and time their audio output, and spice-html5 feeds
// its sound to an <audio> element through Media Source Extensions, with no point to time the first sample at.
// Usage: node --import tsx bench/audio.ts [presses=5]
import { AudioMode, ConsoleController, ChannelType, type PcmChunk, type PlaybackChannel } from '../src/spice/index.ts';
import { openSpiceSession } from '../src/spice-node/client.ts';
import { nodeOpusCodecs } from '../src/spice-node/opus.ts';
import { encodeWav } from '../src/spice/audio/wav.ts';
import { startDesktopVm, type DesktopVm } from '../test/helpers/desktop.ts';
import { ADMIN_PASSWORD, killVmsIn, startTestServer, type TestServer } from '../test/helpers/server.ts';
import { sine } from '../test/helpers/tone.ts';
import { ensureWebBuild, launchChromium, signIn } from '../test/web/helpers.ts';
import { setTimeout as sleep } from 'node:timers/promises';

/* eslint-disable @typescript-eslint/no-explicit-any -- the page's globals: this file is checked as Node code */
declare const window: any;
declare const document: any;

const presses = Number(process.argv[2] ?? 5);
/** A sample louder than this (of 32767) counts as sound: the tone (amplitude 30000) passes it at its 2nd sample. */
const LOUD = 2000;
const COMMAND = 'aplay -q /tmp/tone.wav';

const stats = (ms: number[]) => {
  const s = [...ms].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]!, max: s.at(-1)! };
};

async function nodeClient(t: TestServer, vm: DesktopVm, opus: boolean): Promise<number[]> {
  const session = await openSpiceSession({
    url: `${t.url.replace('http', 'ws')}/api/vms/${vm.name}/spice`,
    headers: { authorization: `Bearer ${t.adminToken}` },
    channelTypes: [ChannelType.DISPLAY, ChannelType.INPUTS, ChannelType.PLAYBACK],
    ...(opus ? { audio: await nodeOpusCodecs() } : {}),
  });
  const controller = new ConsoleController(session);
  try {
    const pb = await session.whenChannel<PlaybackChannel>(ChannelType.PLAYBACK);
    let heard: number | undefined;
    pb.onPcm((c: PcmChunk) => {
      if (heard === undefined && c.samples.some((s) => Math.abs(s) > LOUD)) heard = performance.now();
    });
    await controller.keyboard();
    const out: number[] = [];
    for (let i = 0; i < presses; i++) {
      await controller.typeText(COMMAND);
      await sleep(500);
      heard = undefined;
      const t0 = performance.now();
      await controller.pressKeys(['Enter']);
      const end = t0 + 10_000;
      while (heard === undefined && performance.now() < end) await sleep(1);
      if (heard === undefined) throw new Error('no sound within 10 s (is the xterm focused?)');
      out.push(heard - t0);
      await sleep(1500); // the tone ends
    }
    if (opus !== (pb.mode === AudioMode.OPUS)) throw new Error(`asked for ${opus ? 'Opus' : 'raw'}, got mode ${pb.mode}`);
    return out;
  } finally {
    controller.dispose();
    session.close();
  }
}

async function browserClient(t: TestServer, vm: DesktopVm): Promise<number[]> {
  ensureWebBuild();
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await signIn(page, t.url, 'admin', ADMIN_PASSWORD);
    await page.goto(`${t.url}/vms/${vm.name}/console`);
    await page.waitForSelector('#console-status[data-status=connected]', { timeout: 60_000 });
    await page.click('.spice-console'); // focus, and the user gesture the page's audio needs
    await page.evaluate((loud) => {
      window.__heard = undefined;
      window.orielConsole.audio.tap = (c: { samples: Int16Array }) => {
        if (window.__heard === undefined && c.samples.some((s: number) => Math.abs(s) > loud)) {
          window.__heard = performance.now();
        }
      };
      document.addEventListener('keydown', (e: any) => { if (e.code === 'Enter') window.__pressed = performance.now(); },
        { capture: true });
    }, LOUD);
    const out: number[] = [];
    for (let i = 0; i < presses; i++) {
      await page.evaluate((cmd) => window.orielConsole.typeText(cmd), COMMAND);
      await sleep(500);
      await page.evaluate(() => (window.__heard = undefined));
      await page.keyboard.press('Enter');
      const ms = await page.waitForFunction(() => window.__heard !== undefined && window.__heard - window.__pressed,
        undefined, { timeout: 10_000 });
      out.push(Number(await ms.jsonValue()));
      await sleep(1500);
    }
    if (!(await page.evaluate(() => window.orielConsole.audio.stats.opus))) throw new Error('the page got no Opus');
    return out;
  } finally {
    await browser.close();
  }
}

const t = await startTestServer();
try {
  const vm = await startDesktopVm(t, 'bench-audio');
  // 0.5 s of 440 Hz at full scale, stereo 48 kHz (what spice-server plays out unresampled).
  const tone = sine(440, 0.5, 48000, 2, 30000);
  await vm.agent.writeFile('/tmp/tone.wav', Buffer.from(encodeWav({ samples: tone, channels: 2, rate: 48000 })));
  const rows: [string, number[]][] = [
    ['Oriel Node client, Opus', await nodeClient(t, vm, true)],
    ['Oriel Node client, raw PCM', await nodeClient(t, vm, false)],
    ['Oriel browser console (Chromium), Opus/WebCodecs', await browserClient(t, vm)],
  ];
  console.log(`\nkey press at the client → first sound at the client (ms), ${presses} presses each, desktop guest (TCG)`);
  console.log('client'.padEnd(52) + 'min'.padStart(8) + 'median'.padStart(8) + 'max'.padStart(8));
  for (const [label, ms] of rows) {
    const s = stats(ms);
    console.log(label.padEnd(52) + [s.min, s.median, s.max].map((x) => x.toFixed(0).padStart(8)).join(''));
  }
  console.log('peer clients: none measured (spicy/remote-viewer cannot be scripted to press a key and time their ' +
    'audio; spice-html5 plays through an <audio> element fed by Media Source Extensions)');
} finally {
  killVmsIn(t.config.dataDir);
  await t.destroy();
}
