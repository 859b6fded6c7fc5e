// A checkpoint store on a real filesystem that fills up (a tmpfs, mounted here: the tests run as root) while a
// checkpoint is taken of a guest rewriting its memory (guest/memcheck.c): a clear error, the VM running on with its
// memory intact, the earlier checkpoint verified and restored; then verify finds a damaged disk image.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointService } from '../../src/checkpoint/index.ts';
import { makeRig, bootTiny, type Rig } from './helpers.ts';
import { Memcheck } from './memcheck.ts';

const MIB = 24;

describe('a checkpoint store that fills up', () => {
  let rig: Rig;
  let svc: CheckpointService;
  let mc: Memcheck;
  let root: string;
  let first: string;
  const sh = async (cmd: string) => {
    const r = await rig.vms.exec('fd', ['sh', '-c', cmd], 60_000);
    assert.equal(r.exitCode, 0, r.stderr);
    return r.stdout.trim();
  };
  const usedMiB = () => {
    const s = statfsSync(root);
    return ((s.blocks - s.bfree) * s.bsize) / 2 ** 20;
  };
  const resize = (mib: number) => execFileSync('mount', ['-o', `remount,size=${Math.ceil(mib)}m`, root]);

  before(async () => {
    rig = await makeRig();
    root = join(rig.dataDir, 'ckstore');
    mkdirSync(root);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m,mode=0700', 'oriel-ckstore', root]);
    svc = new CheckpointService(rig.vms, { root, qemuImg: rig.qemuImg });
    await bootTiny(rig, 'fd', 160);
    mc = new Memcheck(rig.vms, 'fd');
  });
  after(async () => {
    svc?.close();
    if (root) execFileSync('umount', ['-l', root]);
    await rig.destroy();
  });

  test('full filesystem mid-checkpoint: a clear error, the VM runs on, the earlier checkpoint verifies and restores', async () => {
    await sh('dd if=/dev/urandom of=/dev/vda bs=64k count=8 oflag=direct 2>/dev/null; echo 1 > /tmp/mark');
    await mc.start(MIB);
    first = (await svc.create('fd')).id;
    // Room for a few MiB more: the next checkpoint's ~24 MiB of rewritten pages do not fit.
    resize(usedMiB() + 6);
    await sh('echo 2 > /tmp/mark');
    const pid = rig.vms.get('fd').pid;
    await assert.rejects(svc.create('fd'), (e: Error) => {
      console.log('error:', e.message);
      assert.match(e.message, /the checkpoint store .* is full \(.*(no space left|ENOSPC).*MiB free now\)/i);
      assert.match(e.message, /the VM was left as it was and the earlier checkpoints are intact/);
      return true;
    });
    assert.equal(rig.vms.get('fd').state, 'running');
    assert.equal(rig.vms.get('fd').pid, pid, 'the same QEMU');
    const { check, then: mark } = await mc.fullCheck('cat /tmp/mark');
    assert.equal(check.bad, 0, `the guest's memory after the failed checkpoint: ${check.first}`);
    assert.equal(mark, '2');
    await new Promise((r) => setTimeout(r, 300)); // its status line is rewritten every 250 ms
    assert.ok((await mc.status()).bytes > check.bytes, 'it goes on writing');
    assert.deepEqual(svc.list('fd').map((c) => c.id), [first], 'no checkpoint appeared');
    const v = await svc.verify();
    assert.ok(v.ok, JSON.stringify(v.broken));
    assert.equal(v.diskImages, 1);
    const r = await svc.restore(first);
    assert.equal(r.mode, 'lazy', r.fallback);
    const back = await mc.fullCheck('cat /tmp/mark');
    assert.equal(back.check.bad, 0, `restored: ${back.check.first}`);
    assert.equal(back.then, '1', 'at the first checkpoint');
    // With room again, the next checkpoint is taken.
    resize(256);
    const next = await svc.create('fd');
    assert.deepEqual(svc.list('fd').map((c) => c.id), [first, next.id]);
  });

  test('verify checks disk images: a flipped byte in one, then gone', async () => {
    assert.ok((await svc.verify()).ok);
    // b came after a restore: a new disk chain, not backed by a.
    const [a, b] = svc.list('fd').map((c) => svc.show(c.id));
    const img = join(root, a!.disks[0]!.file);
    assert.ok(a!.disks[0]!.digest && b!.disks[0]!.digest, 'digests recorded');
    assert.equal(b!.disks[0]!.backing, null);
    const map = JSON.parse(execFileSync(rig.qemuImg, ['map', '-U', '--output=json', img], { encoding: 'utf8' })) as {
      depth: number; data: boolean; offset?: number;
    }[];
    const at = map.find((e) => e.depth === 0 && e.data && e.offset !== undefined)!.offset! + 100;
    const fd = openSync(img, 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at);
    writeSync(fd, Buffer.from([byte[0]! ^ 0xff]), 0, 1, at);
    closeSync(fd);
    const v = await svc.verify();
    assert.equal(v.ok, false);
    assert.deepEqual(Object.keys(v.broken), [a!.id]);
    assert.match(v.broken[a!.id]!.join(), /^disk disks\/.*\.qcow2: its content does not match its digest/);
    rmSync(img);
    const w = await svc.verify();
    assert.deepEqual(w.broken[a!.id], [`disk ${a!.disks[0]!.file}: missing`]);
    assert.equal(w.broken[b!.id], undefined, 'the other one is sound');
  });
});
