// `accel: auto` must pick an accelerator under which a Linux guest really boots. On this kind of machine /dev/kvm
// exists and SeaBIOS runs under it, yet Linux hangs right after detecting the TSC: a probe of the firmware alone
// said KVM and every VM hung. The probe now boots the tiny image's kernel; whatever it picks, the same kernel must
// reach /init under it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig, scratchRoot } from '../../src/config.ts';
import { KVM_CPU, resolveAccel } from '../../src/vm/accel.ts';
import { ensureTinyImage } from '../helpers/images.ts';

test('auto picks an accelerator under which the tiny guest boots to /init', async () => {
  const img = await ensureTinyImage();
  const qemu = defaultConfig().qemuBinary;
  const accel = await resolveAccel('auto', qemu, { kernel: img.kernel!, initrd: img.initrd! });
  const dir = mkdtempSync(join(scratchRoot(), 'oaccel-'));
  const log = join(dir, 'serial.log');
  const child = spawn(
    qemu,
    [
      '-accel',
      accel,
      '-cpu',
      accel === 'kvm' ? KVM_CPU : 'max',
      '-machine',
      'q35',
      '-m',
      '128',
      '-nodefaults',
      '-display',
      'none',
      '-kernel',
      img.kernel!,
      '-initrd',
      img.initrd!,
      '-append',
      'console=ttyS0 panic=-1',
      '-serial',
      `file:${log}`,
    ],
    { stdio: 'ignore' },
  );
  try {
    const end = Date.now() + 90_000;
    let text = '';
    while (Date.now() < end && !/Run \/init as init process/.test(text)) {
      await new Promise((r) => setTimeout(r, 200));
      try { text = readFileSync(log, 'latin1'); } catch { /* not yet */ }
    }
    assert.match(
      text,
      /Run \/init as init process/,
      `the kernel did not reach /init under ${accel}; last output: ${text.slice(-300)}`,
    );
    console.log(`auto chose ${accel}`);
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
