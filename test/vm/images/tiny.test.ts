// The tiny guest image: its cpio writer and the GuestShell protocol on their own (fast), then the real image
// booted in QEMU with the device wiring the VM manager uses (TCG: a few seconds per boot).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { cpioArchive, writeCpioGz, type CpioEntry } from '../../../src/vm/images/cpio.ts';
import { buildTinyImage } from '../../../src/vm/images/tiny.ts';
import type { ImageManifest } from '../../../src/vm/images/types.ts';
import { commandScript, GuestShell } from '../../../src/vm/guest-shell.ts';

const scratch: string[] = [];
const qemus: ChildProcess[] = [];
after(() => {
  for (const q of qemus) if (q.exitCode === null && q.signalCode === null) q.kill('SIGKILL');
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

/** A short folder under the system's temp dir (unix socket paths must stay under 108 bytes). */
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ot-'));
  scratch.push(d);
  return d;
}

// ---- cpio ----

interface Parsed { name: string; mode: number; data: Buffer }

/** Reads a newc archive back, checking the layout the kernel relies on (magic, 4-byte alignment, trailer). */
function parseNewc(buf: Buffer): Parsed[] {
  const out: Parsed[] = [];
  let off = 0;
  for (;;) {
    assert.equal(off % 4, 0, 'entries start on 4-byte boundaries');
    assert.equal(buf.toString('latin1', off, off + 6), '070701');
    const field = (i: number) => parseInt(buf.toString('latin1', off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = field(1), size = field(6), nameSize = field(11);
    const name = buf.toString('latin1', off + 110, off + 110 + nameSize - 1);
    assert.equal(buf[off + 110 + nameSize - 1], 0, 'names end with NUL');
    const dataAt = Math.ceil((off + 110 + nameSize) / 4) * 4;
    if (name === 'TRAILER!!!') {
      assert.equal(dataAt, buf.length, 'nothing after the trailer');
      return out;
    }
    out.push({ name, mode, data: buf.subarray(dataAt, dataAt + size) });
    off = Math.ceil((dataAt + size) / 4) * 4;
  }
}

test('cpio newc: files, folders and symlinks round-trip; gzip output matches', async () => {
  const entries: CpioEntry[] = [
    { type: 'dir', path: 'bin' },
    { type: 'file', path: '/bin/tool', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
    { type: 'symlink', path: 'bin/sh', target: 'tool' },
    { type: 'dir', path: 'etc/deep', mode: 0o700 },
    { type: 'file', path: 'etc/deep/odd', data: Buffer.from([0, 1, 2]) }, // sizes not multiple of 4
    { type: 'file', path: 'empty', data: Buffer.alloc(0) },
  ];
  const archive = cpioArchive(entries);
  const parsed = parseNewc(archive);
  assert.deepEqual(
    parsed.map((e) => [e.name, e.mode.toString(8)]),
    [
      ['bin', '40755'],
      ['bin/tool', '100755'],
      ['bin/sh', '120777'],
      ['etc/deep', '40700'],
      ['etc/deep/odd', '100644'],
      ['empty', '100644'],
    ],
  );
  assert.equal(parsed[1]!.data.toString(), '#!/bin/sh\necho hi\n');
  assert.equal(parsed[2]!.data.toString(), 'tool');
  assert.deepEqual([...parsed[4]!.data], [0, 1, 2]);
  assert.throws(() => cpioArchive([{ type: 'dir', path: 'a/../b' }]), /bad path/);

  const gz = join(tempDir(), 'a.cpio.gz');
  await writeCpioGz(entries, gz);
  assert.deepEqual(gunzipSync(readFileSync(gz)), archive);
  // GNU cpio, when the host has it, must list the same names.
  if (spawnSync('cpio', ['--version']).status === 0) {
    const listed = execFileSync('cpio', ['-t', '--quiet'], { input: archive, encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(listed, parsed.map((e) => e.name));
  }
});

// ---- GuestShell on its own ----

test('GuestShell quoting: argv reaches the command word for word', () => {
  assert.equal(commandScript(['ls', '-l', '/']), `'ls' '-l' '/'\n`);
  assert.equal(commandScript(["it's"]), `'it'\\''s'\n`);
  assert.throws(() => commandScript([]), /empty command/);
  const words = ['printf', '[%s]\\n', "it's", '$HOME', '`id`', '"q"', 'a b', '', '*', '\\', 'x\ny', ';exit 9', "''"];
  const r = spawnSync('/bin/sh', ['-c', commandScript(words)], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.equal(r.stdout, words.slice(2).map((w) => `[${w}]\n`).join(''));
});

/**
 * A stand-in for the guest's command server: noise first, answers split at awkward places, the stdout it
 * returns is the script it got and the stderr its input; a script containing 'slow' is answered late, 'die'
 * closes the connection.
 */
function fakeGuest(path: string) {
  const server = createServer((sock: Socket) => {
    sock.write('boot noise\r\nE 1 0\nB 1\nO zzzz.1\n\0\xff garbage without newline');
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        const [op, id, , sl, il] = buf.toString('latin1', 0, nl).split(' ');
        if (op === 'X') {
          const need = nl + 1 + Number(sl) + Number(il);
          if (buf.length < need) return;
          const script = gunzipSync(
            Buffer.from(buf.toString('latin1', nl + 1, nl + 1 + Number(sl)), 'base64'),
          ).toString();
          const input = Number(il)
            ? gunzipSync(Buffer.from(buf.toString('latin1', nl + 1 + Number(sl), need), 'base64'))
            : Buffer.alloc(0);
          buf = buf.subarray(need);
          if (script.includes('die')) return void sock.destroy();
          const b64 = (b: Buffer) =>
            (
              gzipSync(b)
                .toString('base64')
                .match(/.{1,76}/g) ?? []
            )
              .map((l) => l + '\n')
              .join('');
          const reply = `B ${id}\n${b64(Buffer.from(script))}S ${id}\n${b64(input)}E ${id} 7\n`;
          const send = () => { for (let i = 0; i < reply.length; i += 13) sock.write(reply.slice(i, i + 13)); };
          if (script.includes('slow')) setTimeout(send, 300);
          else send();
          continue;
        }
        buf = buf.subarray(nl + 1);
        if (op === 'P') sock.write(`O ${id}\r\n`);
      }
    });
  });
  return new Promise<() => void>((resolve) => server.listen(path, () => resolve(() => server.close())));
}

test('GuestShell protocol: ignores noise, decodes, queues, survives a timeout, fails clearly on close', async () => {
  const path = join(tempDir(), 's.sock');
  const stop = await fakeGuest(path);
  const sh = new GuestShell(path);
  try {
    await sh.connect(2000);
    const input = 'line1\nE x 0\nB y\n' + 'é€😀\0\r'.repeat(1000);
    const r = await sh.exec(['cat', "it's"], { input });
    assert.deepEqual(r, { stdout: `'cat' 'it'\\''s'\n`, stderr: input, exitCode: 7 });
    // Concurrent calls run one after another and each gets its own answer.
    const many = await Promise.all(['a', 'b', 'c'].map((w) => sh.execScript(`echo ${w}`)));
    assert.deepEqual(many.map((m) => m.stdout), ['echo a', 'echo b', 'echo c']);
    // A timeout rejects clearly; the late answer is not mistaken for the next command's.
    await assert.rejects(sh.execScript('slow', { timeoutMs: 100 }), /did not finish within 100 ms.*slow/);
    assert.equal((await sh.execScript('next')).stdout, 'next');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await sh.execScript('after')).stdout, 'after');
    const pending = sh.execScript('die');
    const queued = sh.execScript('never');
    await assert.rejects(pending, /closed the connection/);
    await assert.rejects(queued, /closed the connection/);
  } finally {
    sh.close();
    stop();
  }
  await assert.rejects(new GuestShell(join(tempDir(), 'none.sock')).connect(300), /cannot connect/);
  const silentPath = join(tempDir(), 'q.sock');
  const silent = createServer(() => {});
  await new Promise<void>((r) => silent.listen(silentPath, r));
  await assert.rejects(new GuestShell(silentPath).connect(300), /did not answer within 300 ms/);
  silent.close();
});

// ---- the image ----

const cacheDir = process.env.ORIEL_CACHE_DIR ?? join(homedir(), '.cache', 'oriel');
let image: ImageManifest;

test('tiny image: builds (or finds) the image; a second call is instant', async (t) => {
  let t0 = Date.now();
  const stages = new Set<string>();
  image = await buildTinyImage({ cacheDir, progress: (_d, _t, s) => stages.add(s) });
  const first = Date.now() - t0;
  t.diagnostic(
    stages.size ? `cold build: ${first} ms (stages ${[...stages].join(', ')})` : `already built: ${first} ms`,
  );
  t0 = Date.now();
  assert.deepEqual(await buildTinyImage({ cacheDir }), image);
  t.diagnostic(`cached build: ${Date.now() - t0} ms`);
  for (const f of [image.kernel, image.initrd, image.disk]) assert.ok(f && existsSync(f), `${f} exists`);
  assert.match(image.append!, /console=tty0 .*console=ttyS0/);
  assert.equal(image.readyMarker, 'ORIEL-READY');
  assert.equal(image.exec, 'serial-shell');
  assert.deepEqual(JSON.parse(readFileSync(join(image.dir, 'manifest.json'), 'utf8')), image);
});

test('tiny image: a cancelled build leaves no image and no build folder', async () => {
  const cache = tempDir();
  const ac = new AbortController();
  await assert.rejects(buildTinyImage({ cacheDir: cache, signal: ac.signal, progress: () => ac.abort() }), {
    name: 'AbortError',
  });
  assert.equal(existsSync(join(cache, 'images')), false);
  assert.deepEqual(readdirSync(join(cache, 'tmp')), []);
});

interface Guest { dir: string; proc: ChildProcess; exited: Promise<number | null>; stderr: () => string }

function boot(vga: 'std' | 'qxl'): Guest {
  const dir = tempDir();
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image.disk!, join(dir, 'disk.qcow2')]);
  const proc = spawn(
    'qemu-system-x86_64',
    [
      '-machine',
      'q35',
      '-accel',
      'tcg',
      '-m',
      '256',
      '-smp',
      '1',
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-vga',
      vga,
      '-chardev',
      `socket,id=serial0,path=${dir}/serial.sock,server=on,wait=off,logfile=${dir}/serial.log`,
      '-serial',
      'chardev:serial0',
      '-chardev',
      `socket,id=shell0,path=${dir}/shell.sock,server=on,wait=off`,
      '-serial',
      'chardev:shell0',
      '-kernel',
      image.kernel!,
      '-initrd',
      image.initrd!,
      '-append',
      image.append!,
      '-blockdev',
      `driver=qcow2,node-name=disk0,file.driver=file,file.filename=${dir}/disk.qcow2`,
      '-device',
      'virtio-blk-pci,drive=disk0,id=disk0',
      '-device',
      'virtio-serial-pci',
      '-chardev',
      'spicevmc,id=vdagent,name=vdagent',
      '-device',
      'virtserialport,chardev=vdagent,name=com.redhat.spice.0',
      '-spice',
      `unix=on,addr=${dir}/spice.sock,disable-ticketing=on`,
      '-qmp',
      `unix:${dir}/qmp.sock,server=on,wait=off`,
      '-pidfile',
      `${dir}/qemu.pid`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  qemus.push(proc);
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { dir, proc, exited, stderr: () => stderr };
}

async function waitReady(g: Guest, timeoutMs = 120_000): Promise<number> {
  const t0 = Date.now();
  const log = join(g.dir, 'serial.log');
  while (Date.now() - t0 < timeoutMs) {
    if (g.proc.exitCode !== null) assert.fail(`QEMU exited (${g.proc.exitCode}): ${g.stderr()}`);
    if (existsSync(log) && readFileSync(log, 'latin1').includes(image.readyMarker!)) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(
    `no ${image.readyMarker} on the serial console within ${timeoutMs} ms:\n${existsSync(log) ? readFileSync(log, 'latin1').slice(-2000) : '(no log)'}`,
  );
}

/** Raw QMP over the unix socket: the greeting, qmp_capabilities, then one command; resolves with its return. */
function qmp(dir: string, execute: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = connect(join(dir, 'qmp.sock'));
    let buf = '';
    let sent = 0;
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const msg = JSON.parse(buf.slice(0, nl)) as { QMP?: unknown; return?: unknown; error?: { desc: string } };
        buf = buf.slice(nl + 1);
        if (msg.error) return reject(new Error(msg.error.desc));
        if (msg.QMP && sent === 0) {
          s.write(JSON.stringify({ execute: 'qmp_capabilities' }) + '\n');
          sent = 1;
        } else if ('return' in msg && sent === 1) {
          s.write(JSON.stringify({ execute }) + '\n');
          sent = 2;
        } else if ('return' in msg && sent === 2) {
          s.end();
          resolve(msg.return);
        }
      }
    });
  });
}

async function powerdown(g: Guest): Promise<number> {
  const t0 = Date.now();
  await qmp(g.dir, 'system_powerdown');
  const code = await Promise.race([g.exited, new Promise<'late'>((r) => setTimeout(() => r('late'), 15_000).unref())]);
  assert.notEqual(code, 'late', 'QEMU did not exit within 15 s of system_powerdown');
  assert.equal(code, 0);
  return Date.now() - t0;
}

/** The release the kernel reports (uname -r): the first word after 'Linux version ' in the kernel's banner. */
function kernelRelease(): string {
  const k = readFileSync(image.kernel!);
  const at = k.indexOf('Linux version ');
  assert.ok(at >= 0, 'the kernel image holds its version banner');
  return k.toString('latin1', at + 14, at + 80).split(' ')[0]!;
}

test('tiny guest on -vga std: ready marker, commands, disk, framebuffer, ACPI power-off', async (t) => {
  const g = boot('std');
  const ms = await waitReady(g);
  t.diagnostic(`boot to ${image.readyMarker}: ${ms} ms`);
  const sh = new GuestShell(join(g.dir, 'shell.sock'));
  t.after(() => sh.close());
  await sh.connect(10_000);

  await t.test('uname -r is the kernel of the image', async () => {
    assert.deepEqual(await sh.exec(['uname', '-r']), { stdout: kernelRelease() + '\n', stderr: '', exitCode: 0 });
  });
  await t.test('exit codes and stderr come back', async () => {
    assert.equal((await sh.exec(['sh', '-c', 'exit 3'])).exitCode, 3);
    assert.deepEqual(await sh.exec(['sh', '-c', 'echo out; echo err >&2; exit 5']), {
      stdout: 'out\n',
      stderr: 'err\n',
      exitCode: 5,
    });
    assert.equal((await sh.exec(['/no/such/command'])).exitCode, 127);
  });
  await t.test('200 KB of awkward text round-trips through stdin and stdout', async () => {
    let text = '';
    for (let i = 0; text.length < 200_000; i++) text += `${i}\tE x ${i}\r\nB y\0${String.fromCharCode(i % 128)}é€😀\n`;
    const t0 = Date.now();
    const r = await sh.exec(['cat'], { input: text });
    t.diagnostic(`cat of ${Buffer.byteLength(text)} bytes: ${Date.now() - t0} ms`);
    assert.equal(r.exitCode, 0);
    assert.ok(r.stdout === text, 'stdout equals the input');
    const seq = await sh.exec(['seq', '1', '40000']);
    assert.equal(seq.stdout, Array.from({ length: 40000 }, (_, i) => `${i + 1}\n`).join(''));
    // Random text does not compress: the whole length crosses the serial line.
    const rnd = await sh.execScript(
      'head -c 150000 /dev/urandom | base64 >/tmp/r && cat /tmp/r && sha256sum /tmp/r >&2',
    );
    assert.equal(rnd.stderr.split(' ')[0], createHash('sha256').update(rnd.stdout).digest('hex'));
  });
  await t.test('a command that times out does not disturb the next one', async () => {
    await assert.rejects(sh.exec(['sleep', '30'], { timeoutMs: 1500 }), /did not finish within 1500 ms/);
    assert.equal((await sh.exec(['echo', 'still in sync'])).stdout, 'still in sync\n');
  });
  await t.test('/dev/vda is the 64 MiB disk and takes writes; /dev/fb0 exists', async () => {
    assert.equal((await sh.exec(['blockdev', '--getsize64', '/dev/vda'])).stdout, `${64 * 1024 * 1024}\n`);
    const w = await sh.execScript('printf oriel-disk-test | dd of=/dev/vda bs=512 seek=100 conv=fsync 2>&1 && sync');
    assert.equal(w.exitCode, 0, w.stdout);
    assert.equal((await sh.exec(['test', '-c', '/dev/fb0'])).exitCode, 0);
    assert.match((await sh.exec(['cat', '/sys/class/graphics/fb0/name'])).stdout, /bochs/);
  });

  const down = await powerdown(g);
  t.diagnostic(`system_powerdown to QEMU exit: ${down} ms`);
  // What the guest wrote reached its overlay (and only the overlay: the base disk stays blank).
  const sector = (qcow2: string) => {
    const raw = join(g.dir, 'disk.raw'); // sparse: 64 MiB written in a blink
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcow2, raw]);
    return readFileSync(raw).subarray(100 * 512, 101 * 512);
  };
  assert.equal(sector(join(g.dir, 'disk.qcow2')).subarray(0, 16).toString('latin1'), 'oriel-disk-test\0');
  assert.ok(sector(image.disk!).every((b) => b === 0), 'the base disk is untouched');
});

test('tiny guest on -vga qxl: framebuffer from the qxl driver, ACPI power-off', async (t) => {
  const g = boot('qxl');
  // Connecting while the guest boots: pings are lost or echoed until its server sets the port up.
  const sh = new GuestShell(join(g.dir, 'shell.sock'));
  t.after(() => sh.close());
  const [ms] = await Promise.all([waitReady(g), sh.connect(120_000)]);
  t.diagnostic(`boot to ${image.readyMarker}: ${ms} ms`);
  assert.equal((await sh.exec(['test', '-c', '/dev/fb0'])).exitCode, 0);
  assert.match((await sh.exec(['cat', '/sys/class/graphics/fb0/name'])).stdout, /qxl/);
  t.diagnostic(`system_powerdown to QEMU exit: ${await powerdown(g)} ms`);
});
