// The virtual USB stick in Oriel's desktop guest (Debian, QEMU qemu-xhci + usb-redir), through Oriel's console
// proxy as `oriel console usb attach VM --disk FILE` uses it: the stick appears as a USB disk (lsblk TRAN usb),
// mounts, a file on it reads back with the right sha256, a file written in the guest is in the image after detach;
// plugged in again by the CLI, read-only, it is write-protected. One guest boot.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { attachUsbDisk, openSpiceSession, usbPorts } from '../../src/spice-node/index.ts';
import { ChannelType, type SpiceSession } from '../../src/spice/index.ts';
import { startDesktopVm, type DesktopVm } from '../helpers/desktop.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let ts: TestServer;
let session: SpiceSession;
let dir: string;
let vm: DesktopVm;
const VM = 'usb';
const BIN = join(import.meta.dirname, '../../bin/oriel.js');
const errors: string[] = [];
let cli: ChildProcess | undefined;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function sh(cmd: string, timeoutMs = 60_000): Promise<string> {
  const r = await vm.exec(['sh', '-c', cmd], { timeoutMs });
  if (r.exitCode !== 0) throw new Error(`guest: ${cmd} → ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

interface Blk { name: string; tran: string | null; ro: boolean | string; size: string; model: string | null }

async function usbDisks(): Promise<Blk[]> {
  const out = JSON.parse(await sh('lsblk -J -d -o NAME,TRAN,RO,SIZE,MODEL')) as { blockdevices: Blk[] };
  return out.blockdevices.filter((b) => b.tran === 'usb');
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}

before(async () => {
  ts = await startTestServer();
  dir = mkdtempSync(join(tmpdir(), 'ousb-'));
  vm = await startDesktopVm(ts, VM);
  session = await openSpiceSession({
    url: `${ts.url.replace('http', 'ws')}/api/vms/${VM}/spice`,
    headers: { authorization: `Bearer ${ts.adminToken}` },
    channelTypes: [ChannelType.USBREDIR],
  });
  session.onChannelError((e) => errors.push(`${e.channel}: ${e.error.message}`));
});

after(async () => {
  cli?.kill();
  session?.close();
  // destroy() stops the VM through the server before closing its database (killing QEMU first would leave the
  // server recording the crash into a closed database).
  await sleep(300);
  await ts?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('an image file plugged in as a USB stick: seen, mounted, read, written, detached, re-attached read-only', async () => {
  // A 64 MiB ext4 image holding one 3 MiB file.
  const content = join(dir, 'content');
  mkdirSync(content);
  const blob = randomBytes(3 * 1024 * 1024 + 123);
  writeFileSync(join(content, 'hello.bin'), blob);
  const img = join(dir, 'stick.img');
  execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'ORIELUSB', '-d', content, img, '64M']);

  const ports = await usbPorts(session);
  assert.equal(ports.length, 2, `the desktop VM has two usb-redir ports; channel errors: ${JSON.stringify(errors)}`);
  await ports[0]!.whenReady();
  assert.match(ports[0]!.host.parser.peer!.version, /qemu usb-redir guest/);
  assert.deepEqual(await usbDisks(), [], 'no USB disk before the stick is plugged in');

  const stick = await attachUsbDisk(session, img);
  const disk = await waitFor('the USB disk in lsblk', async () => (await usbDisks())[0]);
  assert.equal(disk.size, '64M');
  assert.equal(String(disk.ro), 'false');
  const dev = `/dev/${disk.name}`;
  await sh(`mkdir -p /mnt/usb && mount ${dev} /mnt/usb`);
  assert.equal((await sh('sha256sum /mnt/usb/hello.bin')).split(' ')[0], sha(blob));

  // Written in the guest, synced and unmounted, then unplugged.
  const write = 'head -c 2500000 /dev/urandom > /mnt/usb/from-guest.bin && sha256sum /mnt/usb/from-guest.bin';
  const guestSha = (await sh(write)).split(' ')[0];
  await sh('sync && umount /mnt/usb');
  assert.ok(stick.device.commands > 10, `SCSI commands seen: ${stick.device.commands}`);
  await stick.detach();
  await waitFor('the USB disk to go', async () => ((await usbDisks()).length === 0 ? true : undefined), 30_000);
  const out = join(dir, 'from-guest.bin');
  execFileSync('debugfs', ['-R', `dump /from-guest.bin ${out}`, img], { stdio: 'ignore' });
  assert.equal(sha(readFileSync(out)), guestSha, 'the file written in the guest is in the image');

  assert.equal(session.channels.has('usbredir:0'), true, 'the channel stays linked for the next device');
  assert.deepEqual(errors, []);
  session.close();
  await sleep(500);

  // Plugged in again by `oriel console usb attach VM --disk FILE --read-only` (through the server's console
  // WebSocket), read-only this time: same content, write-protected; Ctrl-C unplugs it.
  cli = spawn(process.execPath, [BIN, 'console', 'usb', 'attach', VM, '--disk', img, '--read-only'], {
    env: { ...process.env, ORIEL_URL: ts.url, ORIEL_TOKEN: ts.adminToken, ORIEL_FROM_SOURCES: '1' },
  });
  let stderr = '';
  cli.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => cli!.on('close', r));
  await waitFor('the CLI to plug the stick in', async () => (/Ctrl-C unplugs it/.test(stderr) ? true : undefined));
  assert.match(stderr, /plugged in as a USB stick \(64\.0 MiB, read-only\) on usbredir:0/);
  const ro = await waitFor('the read-only USB disk', async () => (await usbDisks())[0]);
  assert.equal(String(ro.ro), 'true', 'the guest sees the write-protect bit');
  await sh(`mount -o ro /dev/${ro.name} /mnt/usb`);
  assert.equal((await sh('sha256sum /mnt/usb/from-guest.bin')).split(' ')[0], guestSha);
  await sh('umount /mnt/usb');
  const imageSha = sha(readFileSync(img));
  const w = await vm.exec(['sh', '-c', `dd if=/dev/zero of=/dev/${ro.name} bs=512 count=8 oflag=direct`]);
  assert.notEqual(w.exitCode, 0, 'writing a read-only stick fails in the guest');
  cli.kill('SIGINT');
  assert.equal(await exited, 0, stderr);
  assert.match(stderr, /stick\.img: unplugged/);
  await waitFor('the USB disk to go', async () => ((await usbDisks()).length === 0 ? true : undefined), 30_000);
  assert.equal(sha(readFileSync(img)), imageSha, 'the read-only image is unchanged');
});
