// `oriel console usb` in its own process: usage errors before any connection, then against a real QEMU with two
// usb-redir ports (firmware only, no guest OS: the usbredir hello comes from QEMU itself) — `list` names the ports,
// `attach --disk` plugs the stick in and Ctrl-C unplugs it. The stick in a guest: test/spice/usb-stick-guest.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const BIN = join(import.meta.dirname, '../../bin/oriel.js');
let dir: string;
let qemu: ChildProcess | undefined;
let target: string;

function oriel(args: string[], onStderr?: (text: string, p: ChildProcess) => void) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ORIEL_TOKEN: '' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr, p);
    });
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ousbcli-'));
  const sock = join(dir, 'spice.sock');
  target = `spice+unix://${sock}`;
  const args = ['-machine', 'q35', '-nodefaults', '-display', 'none', '-m', '64',
    '-spice', `unix=on,addr=${sock},disable-ticketing=on`, '-device', 'qemu-xhci,id=usb0'];
  for (const i of [0, 1]) {
    args.push('-chardev', `spicevmc,id=ur${i},name=usbredir`, '-device', `usb-redir,chardev=ur${i},bus=usb0.0`);
  }
  qemu = spawn('qemu-system-x86_64', args, { stdio: 'ignore' });
  for (let i = 0; i < 100 && !existsSync(sock); i++) await sleep(100);
});

after(() => {
  qemu?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('usage errors are clear and need no connection', async () => {
  // This machine has no USB bus: said plainly, before any connection.
  const vidpid = await oriel(['console', 'usb', 'attach', 'spice://127.0.0.1:1', '1d6b:0002']);
  assert.equal(vidpid.code, 1);
  assert.match(vidpid.stderr, /this machine has no USB bus|no USB device 1d6b:0002 on this machine/);
  const bad = await oriel(['console', 'usb', 'attach', 'spice://127.0.0.1:1', 'stick']);
  assert.match(bad.stderr, /a device is VID:PID \(hex\), not 'stick'/);
  const none = await oriel(['console', 'usb', 'attach', 'spice://127.0.0.1:1']);
  assert.match(none.stderr, /nothing to attach: give --disk FILE or VID:PID/);
  const missing = await oriel(['console', 'usb', 'attach', 'spice://127.0.0.1:1', '--disk', join(dir, 'nope.img')]);
  assert.match(missing.stderr, /nope\.img: no such file/);
});

test('list names the usb-redir ports; attach --disk plugs the stick in until Ctrl-C', async () => {
  const list = await oriel(['console', 'usb', 'list', target]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^usbredir:0\tqemu usb-redir guest /m);
  assert.match(list.stdout, /^usbredir:1\t/m);
  assert.match(list.stdout, /^devices of this machine: (this machine has no USB bus|none|\n {2}[0-9a-f]{4}:)/m);
  const img = join(dir, 'stick.img');
  writeFileSync(img, new Uint8Array(4 << 20));
  let signalled = false;
  const run = await oriel(['console', 'usb', 'attach', target, '--disk', img, '--read-only'], (text, p) => {
    if (!signalled && /Ctrl-C unplugs it/.test(text)) {
      signalled = true;
      setTimeout(() => p.kill('SIGINT'), 300);
    }
  });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /plugged in as a USB stick \(4\.0 MiB, read-only\) on usbredir:0/);
  assert.match(run.stderr, /stick\.img: unplugged/);
});
