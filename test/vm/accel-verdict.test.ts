// The `auto` accelerator's verdict is kept across server starts (src/vm/accel.ts): on a host where KVM hangs, the
// kernel probe waits out its whole time limit, so a server would otherwise wait that long before its first VM.
// The kept verdict counts only while what it depends on (QEMU binary, host kernel, probe kernel and initrd) is
// unchanged; a probe that cannot run (here: a QEMU binary that does not exist) says TCG and is kept too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeKey, resolveAccel } from '../../src/vm/accel.ts';

test('a kept verdict is reused while its key matches, and probed again when the kernel changes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'oaccel-verdict-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kernel = { kernel: join(dir, 'vmlinux'), initrd: join(dir, 'initrd.img') };
  writeFileSync(kernel.kernel, 'k');
  writeFileSync(kernel.initrd, 'i');
  const qemu = join(dir, 'no-such-qemu');
  const file = join(dir, 'accel-verdict.json');

  // First: probed (the binary cannot start, or /dev/kvm is not usable: TCG), and the verdict kept.
  assert.equal(await resolveAccel('auto', qemu, kernel, file), 'tcg');
  const kept = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(kept.accel, 'tcg');
  assert.match(kept.key, /no-such-qemu/);

  // A kept verdict under the same key is believed (forged here to 'kvm', to see that no probe ran) ...
  utimesSync(kernel.kernel, new Date(), new Date(Date.now() - 60_000)); // a key this process has not seen
  writeFileSync(file, JSON.stringify({ key: probeKey(qemu, kernel), accel: 'kvm' }));
  assert.equal(await resolveAccel('auto', qemu, kernel, file), 'kvm', 'the kept verdict, no probe');
  // ... and not once the initrd changed (same size, new time): probed again, and kept under the new key.
  writeFileSync(kernel.initrd, 'j');
  utimesSync(kernel.initrd, new Date(), new Date(Date.now() - 120_000));
  assert.equal(await resolveAccel('auto', qemu, kernel, file), 'tcg', 'a changed initrd: probed again');
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).key, probeKey(qemu, kernel));

  // Garbage in the file is ignored (probed again).
  writeFileSync(file, '{not json');
  utimesSync(kernel.kernel, new Date(), new Date(Date.now() - 180_000));
  assert.equal(await resolveAccel('auto', qemu, kernel, file), 'tcg');
  // A bare QEMU name is keyed by the file PATH finds (its size and time): an upgrade makes a new key.
  assert.match(probeKey('node', kernel), /^\/\S*\/node:\d+:/);
  // Explicit choices never probe.
  assert.equal(await resolveAccel('kvm', qemu, kernel, file), 'kvm');
});
