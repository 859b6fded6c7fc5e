// The `auto` accelerator's verdict is kept across server starts (src/vm/accel.ts): on a host where KVM hangs, the
// kernel probe waits out its whole time limit, so a server would otherwise wait that long before its first VM.
// Kept: a costly verdict (KVM worked, or the probe ran out of time), for a week, while what it depends on (QEMU
// binary, host kernel, /dev/kvm, probe kernel and initrd) is unchanged. Not kept: a quick failure (here: a QEMU
// binary that does not exist), which may pass next time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, chmodSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeKey, resolveAccel } from '../../src/vm/accel.ts';

const kvmUsable = (() => {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
})();

test('a kept verdict is reused while its key matches and it is recent; quick failures are not kept', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'oaccel-verdict-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kernel = { kernel: join(dir, 'vmlinux'), initrd: join(dir, 'initrd.img') };
  writeFileSync(kernel.kernel, 'k');
  writeFileSync(kernel.initrd, 'i');
  const qemu = join(dir, 'no-such-qemu');
  const file = join(dir, 'accel-verdict.json');
  let age = 0;
  /** A fresh key for this process's own cache (by the kernel's time), with `accel` kept under it. */
  const keep = (accel: string, at = new Date()) => {
    utimesSync(kernel.kernel, new Date(), new Date(Date.now() - ++age * 60_000));
    writeFileSync(file, JSON.stringify({ key: probeKey(qemu, kernel), accel, at: at.toISOString() }));
  };

  // A QEMU that cannot start: TCG, and nothing kept.
  assert.equal(await resolveAccel('auto', qemu, kernel, file), 'tcg');
  assert.equal(existsSync(file), false, 'a quick failure is not kept');

  // A kept verdict under the same key is believed (forged here to 'kvm', to see that no probe ran) ...
  keep('kvm');
  assert.equal(await resolveAccel('auto', qemu, kernel, file), 'kvm', 'the kept verdict, no probe');
  // ... but not a week old ...
  keep('kvm', new Date(Date.now() - 8 * 86_400_000));
  assert.equal(await resolveAccel('auto', qemu, kernel, file), 'tcg', 'an old verdict: probed again');
  // ... nor once the initrd changed (same size, new time), nor garbage.
  keep('kvm');
  writeFileSync(kernel.initrd, 'j');
  utimesSync(kernel.initrd, new Date(), new Date(Date.now() - 3_600_000));
  assert.equal(await resolveAccel('auto', qemu, kernel, file), 'tcg', 'a changed initrd: probed again');
  keep('kvm');
  writeFileSync(file, '{not json');
  assert.equal(await resolveAccel('auto', qemu, kernel, file), 'tcg');
  // Explicit choices never probe.
  assert.equal(await resolveAccel('kvm', qemu, kernel, file), 'kvm');
  // A bare QEMU name is keyed by the file PATH finds (its size and time): an upgrade makes a new key.
  assert.match(probeKey('node', kernel), /^\/\S*\/node:\d+:/);

  // A probe that runs out of time (a "QEMU" that never prints the kernel's mark) is TCG, and kept: that is the
  // costly case. Without a usable /dev/kvm the probe fails at once instead, and nothing is kept.
  const hanging = join(dir, 'hanging-qemu');
  writeFileSync(hanging, '#!/bin/sh\nexec sleep 30\n');
  chmodSync(hanging, 0o755);
  rmSync(file, { force: true });
  assert.equal(await resolveAccel('auto', hanging, kernel, file, 300), 'tcg');
  if (kvmUsable) {
    const kept = JSON.parse(readFileSync(file, 'utf8'));
    assert.deepEqual([kept.accel, kept.key], ['tcg', probeKey(hanging, kernel)]);
  } else {
    assert.equal(existsSync(file), false);
  }
});
