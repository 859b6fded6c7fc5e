// `oriel console` end to end, the real bin/oriel.js in its own process against real QEMU:
// - spice://HOST:PORT with a password: screenshot equals screendump, a wrong password is a clear
//   error, typed text and a key reach tty1, Ctrl+Alt+Del reaches init, a click at a position lands
//   there on the guest's USB tablet;
// - spice+unix:///socket: screenshot;
// - a VM name through a real Oriel server: the console WebSocket (GET /api/vms/{vm}/spice, Bearer
//   token) carries the session; screenshot and typing, checked through the VM's exec API.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PNG } from 'pngjs';
import { ensureTinyImage } from '../helpers/images.ts';
import { startTestServer } from '../helpers/server.ts';
import { BTN_LEFT, EV_ABS, EV_KEY, eventNode, recordEvents, waitForFile } from '../spice/helpers/evdev.ts';
import { parsePpm, screendump, type Ppm } from '../spice/helpers/qemu.ts';
import { startTinyGuest } from '../spice/helpers/tiny-guest.ts';

const BIN = join(import.meta.dirname, '../../bin/oriel.js');

interface Run { code: number; stdout: string; stderr: string }

function oriel(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ORIEL_TOKEN: '', ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Pixels of a PNG that differ from a screendump (-1 if the sizes differ). */
function differing(pngFile: string, ppm: Ppm): number {
  const png = PNG.sync.read(readFileSync(pngFile));
  if (png.width !== ppm.width || png.height !== ppm.height) return -1;
  let n = 0;
  for (let i = 0, j = 0; i < ppm.rgb.length; i += 3, j += 4) {
    if (ppm.rgb[i] !== png.data[j] || ppm.rgb[i + 1] !== png.data[j + 1] || ppm.rgb[i + 2] !== png.data[j + 2]) n++;
  }
  return n;
}

describe('oriel console', () => {
  let dir: string;
  before(async () => {
    await ensureTinyImage();
    dir = mkdtempSync(join(tmpdir(), 'occ-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('spice://: password, screenshot, type, key, ctrl+alt+delete, mouse', async () => {
    const g = await startTinyGuest({
      tcp: true,
      password: 's3cret',
      extraArgs: ['-device', 'qemu-xhci', '-device', 'usb-tablet'],
    });
    try {
      const target = `spice://127.0.0.1:${g.q.spicePort}`;
      const bad = await oriel(['console', 'screenshot', target, join(dir, 'x.png'), '--password', 'nope']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /SPICE password is wrong or missing/);

      const shot = join(dir, 'tcp.png');
      const ok = await oriel(['console', 'screenshot', target, shot, '--password', 's3cret']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /wrote .*tcp\.png \(\d+×\d+\)/);
      // The server's MARK ended the picture (the client does not wait for the display to go quiet).
      assert.match(ok.stdout, /picture complete: mark$/m);
      assert.equal(differing(shot, await screendump(g.q)), 0);

      const typed = await oriel([
        'console',
        'type',
        target,
        'echo typed-by-cli:$((6*7)) > /tmp/cli',
        '--password',
        's3cret',
      ]);
      assert.equal(typed.code, 0, typed.stderr);
      assert.equal((await oriel(['console', 'key', target, 'enter', '--password', 's3cret'])).code, 0);
      assert.equal(await waitForFile(g, '/tmp/cli'), 'typed-by-cli:42\n');

      assert.equal((await oriel(['console', 'key', target, 'ctrl+alt+delete', '--password', 's3cret'])).code, 0);
      await waitForFile(g, '/tmp/ctrl-alt-del');

      const [ev] = await recordEvents(g, [await eventNode(g, /Tablet/)], async () => {
        const r = await oriel([
          'console',
          'mouse',
          target,
          '--move',
          '200,100',
          '--click',
          'left',
          '--password',
          's3cret',
        ]);
        assert.equal(r.code, 0, r.stderr);
      }, 10);
      const { width, height } = await screendump(g.q);
      const last = (code: number) => ev!.filter((e) => e.type === EV_ABS && e.code === code).at(-1)?.value ?? -1;
      assert.deepEqual([Math.round((last(0) * width) / 0x7fff), Math.round((last(1) * height) / 0x7fff)], [200, 100]);
      assert.deepEqual(ev!.filter((e) => e.type === EV_KEY && e.code === BTN_LEFT).map((e) => e.value), [1, 0]);
    } finally {
      await g.stop();
    }
  });

  test('spice+unix://: screenshot; usage errors are explained', async () => {
    const g = await startTinyGuest();
    try {
      const shot = join(dir, 'unix.png');
      const r = await oriel(['console', 'screenshot', `spice+unix://${g.q.spiceSocket}`, shot]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /picture complete: mark$/m);
      assert.equal(differing(shot, await screendump(g.q)), 0);
    } finally {
      await g.stop();
    }
    const missing = await oriel(['console', 'screenshot', 'spice+unix:///nonexistent.sock', join(dir, 'n.png')]);
    assert.match(missing.stderr, /cannot connect to spice\+unix:\/\/\/nonexistent\.sock \(ENOENT\)/);
    assert.match((await oriel(['console', 'key', 'spice://127.0.0.1:1', 'ctrl+bogus'])).stderr, /unknown key 'bogus'/);
    assert.match((await oriel(['console', 'mouse', 'spice://127.0.0.1:1'])).stderr, /nothing to do/);
    assert.match((await oriel(['console', 'screenshot', 'vnc://x:1', join(dir, 'v.png')])).stderr, /unknown scheme/);
  });

  test('a VM name goes through the Oriel server: console WebSocket with the API token', async () => {
    const t = await startTestServer();
    try {
      assert.equal((await t.admin.post('/api/vms', { name: 'cons', image: 'tiny', memoryMiB: 160 })).status, 201);
      assert.equal((await t.admin.post('/api/vms/cons/start')).body.state, 'running');
      await t.admin.post('/api/vms/cons/exec', { argv: ['true'], timeoutSec: 60 }); // booted to its shell
      const env = { ORIEL_URL: t.url, ORIEL_TOKEN: t.adminToken, XDG_CONFIG_HOME: dir };

      const denied = await oriel(['console', 'screenshot', 'cons', join(dir, 'd.png')], { ...env, ORIEL_TOKEN: '' });
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /HTTP 401/);
      assert.match((await oriel(['console', 'screenshot', 'nope', join(dir, 'n.png')], env)).stderr, /HTTP 404/);

      const shot = join(dir, 'vm.png');
      const dump = join(dir, 'vm.ppm');
      // The guest's text cursor blinks: a screenshot and a screendump taken moments apart may catch it in two
      // phases, so compare a few times and require one exact match.
      let diff = -1;
      for (let i = 0; i < 5 && diff !== 0; i++) {
        const r = await oriel(['console', 'screenshot', 'cons', shot], env);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /picture complete: mark$/m);
        await t.server.ctx.vms.qmp('cons').execute('screendump', { filename: dump, format: 'ppm' });
        diff = differing(shot, parsePpm(readFileSync(dump)));
      }
      assert.equal(diff, 0);

      const typed = await oriel(['console', 'type', 'cons', 'echo via-websocket > /tmp/ws', '--enter'], env);
      assert.equal(typed.code, 0, typed.stderr);
      let out = '';
      for (let i = 0; i < 30 && out !== 'via-websocket\n'; i++) {
        await sleep(200);
        out = (await t.admin.post('/api/vms/cons/exec', { argv: ['sh', '-c', 'cat /tmp/ws 2>/dev/null || true'] })).body
          .stdout;
      }
      assert.equal(out, 'via-websocket\n');
    } finally {
      await t.destroy();
    }
  });
});
