// The command line of a VM's firmware and CD-ROM drive, and the pieces of an upload that need no server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CDROM_ID, OVMF_CODE } from '../../src/vm/media-args.ts';
import { vmPaths } from '../../src/vm/paths.ts';
import { qemuArgs } from '../../src/vm/qemu-args.ts';
import type { VmSpec } from '../../src/vm/spec.ts';
import { isIso } from '../../src/vm/uploads/detect.ts';
import { parseContentRange } from '../../src/vm/uploads/receive.ts';

const base: VmSpec = { memoryMiB: 256, cpus: 1, display: 'std', accel: 'tcg' };
const p = vmPaths('/data', 'abcdef012345');
const spice = { port: 5999, password: 'x' };
const after = (a: string[], flag: string) => a.flatMap((v, i) => (v === flag ? [a[i + 1]!] : []));

test('UEFI: OVMF code read-only, the VM\'s own variable store writable', () => {
  const a = qemuArgs('v', { ...base, firmware: 'uefi', blankDisk: true, diskBytes: 1 }, p, 'tcg', spice);
  assert.deepEqual(after(a, '-drive'), [
    `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
    'if=pflash,format=raw,unit=1,file=/data/vms/abcdef012345/OVMF_VARS.fd',
  ]);
  assert.deepEqual(after(qemuArgs('v', base, p, 'tcg', spice), '-drive'), [], 'BIOS: no flash');
});

test('CD-ROM: booted after the disk; an empty drive has no medium; commas in paths are escaped', () => {
  const spec: VmSpec = { ...base, blankDisk: true, diskBytes: 1, cdrom: { image: 'i', file: '/img/a,b/data' } };
  const a = qemuArgs('v', spec, p, 'tcg', spice);
  const devices = after(a, '-device');
  assert.ok(devices.includes('virtio-blk-pci,drive=disk0,id=disk0,bootindex=0'), devices.join('\n'));
  assert.ok(devices.includes(`ide-cd,id=${CDROM_ID},bus=ide.2,drive=cd0-medium,bootindex=1`), devices.join('\n'));
  assert.ok(after(a, '-blockdev').some((b) => b.includes('file.filename=/img/a,,b/data,file.read-only=on')));
  const empty = after(qemuArgs('v', { ...spec, cdrom: null }, p, 'tcg', spice), '-device');
  assert.ok(empty.includes(`ide-cd,id=${CDROM_ID},bus=ide.2,bootindex=1`), empty.join('\n'));
  assert.ok(!after(qemuArgs('v', base, p, 'tcg', spice), '-device').some((d) => d.startsWith('ide-cd')), 'no drive');
});

test('Content-Range is parsed strictly', () => {
  assert.deepEqual(parseContentRange('bytes 0-99/1000'), { start: 0, end: 99, total: 1000 });
  assert.deepEqual(parseContentRange('bytes 5-9/*'), { start: 5, end: 9 });
  assert.equal(parseContentRange(undefined), undefined);
  for (const bad of ['bytes 9-5/10', 'items 0-1/2', 'bytes -1-2/3', 'bytes 0-1/2/3', 'bytes 1e3-2000/3000'])
    assert.throws(() => parseContentRange(bad), /Content-Range/, bad);
});

test('an ISO is known by its volume descriptor signature', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oiso-'));
  try {
    const b = Buffer.alloc(40_000);
    writeFileSync(join(dir, 'short'), Buffer.alloc(100));
    writeFileSync(join(dir, 'zero'), b);
    b.write('CD001', 16 * 2048 + 1, 'latin1');
    writeFileSync(join(dir, 'iso'), b);
    assert.equal(isIso(join(dir, 'iso')), true);
    assert.equal(isIso(join(dir, 'zero')), false);
    assert.equal(isIso(join(dir, 'short')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
