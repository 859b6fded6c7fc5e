// A VM whose RAM is in 2 MiB huge pages (`hugepages`): QEMU gets a hugetlb memfd, checkpoints of it restore exactly
// like any other (lazily too, by whole huge pages), and a host without enough free huge pages refuses to start it
// with a message that says what to do. The test reserves the huge pages itself (the kernel 2 MiB pool, as root) and
// gives them back at the end.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CheckpointService } from '../../src/checkpoint/index.ts';
import { checkHugePages, hugePages } from '../../src/vm/hugepages.ts';
import { makeRig, bootTiny, reserveHugePages, type Rig } from './helpers.ts';

const MEM = 256;

test('huge pages: the refusal says how many pages and how to reserve them', () => {
  const hp = { total: 100, available: 50 };
  checkHugePages('a', 100, hp); // 50 pages: exactly enough
  assert.throws(() => checkHugePages('big', 256, hp), (e: Error) => {
    assert.match(
      e.message,
      /cannot start VM 'big': it needs 128 free huge pages of 2 MiB and the host has 50 \(of 100 reserved\)/,
    );
    assert.match(e.message, /echo 178 > \/sys\/kernel\/mm\/hugepages\/hugepages-2048kB\/nr_hugepages/);
    return true;
  });
});

describe('a huge-page VM', () => {
  let rig: Rig;
  let svc: CheckpointService;
  let giveBack: (() => void) | undefined;
  const sh = async (cmd: string) => {
    const r = await rig.vms.exec('hp', ['sh', '-c', cmd], 90_000);
    assert.equal(r.exitCode, 0, r.stderr);
    return r.stdout.trim();
  };
  const state = () => sh('cat /mnt/c; md5sum /mnt/p | cut -c1-32');

  before(async () => {
    // Exactly the VM's: a restore in place ends the old QEMU before it starts the new one.
    giveBack = reserveHugePages(MEM / 2);
    if (!giveBack) return;
    rig = await makeRig();
    svc = new CheckpointService(rig.vms, { root: CheckpointService.defaultRoot(rig.dataDir), qemuImg: rig.qemuImg });
    await bootTiny(rig, 'hp', MEM, { hugepages: true });
    await sh('mkdir -p /mnt && mount -t tmpfs t /mnt && dd if=/dev/urandom of=/mnt/p bs=1M count=8 2>/dev/null');
  });
  after(async () => {
    svc?.close();
    await rig?.destroy();
    giveBack?.();
  });

  test('runs on huge pages; two live checkpoints restore to their instants', async (t) => {
    if (!giveBack) return t.skip('this user cannot reserve huge pages (the 2 MiB pool needs root)');
    assert.equal(hugePages().available, 0, 'the guest RAM took the reserved huge pages (prealloc)');
    const chain: { id: string; expect: string }[] = [];
    for (let i = 1; i <= 2; i++) {
      await sh(
        `echo ${i} > /mnt/c; dd if=/dev/urandom of=/mnt/p bs=4k count=64 seek=${i * 100} conv=notrunc 2>/dev/null`,
      );
      const expect = await state();
      const m = await svc.create('hp');
      assert.ok(m.stream.blocks.some((b) => b.id === 'ram0'), 'guest RAM is the memfd backend');
      console.log(`checkpoint ${i}: pause ${m.stats.pauseMs} ms, ${m.stats.newBytes} B new`);
      chain.push({ id: m.id, expect });
    }
    await sh('echo 99 > /mnt/c; dd if=/dev/urandom of=/mnt/p bs=1M count=8 2>/dev/null');
    // Lazily (postcopy by whole 2 MiB pages: the guest answers while its RAM arrives), then eagerly.
    for (const [n, c] of [...chain].reverse().entries()) {
      let answered: Promise<string> | undefined;
      const lazy = n === 0;
      const r = await svc.restore(c.id, undefined, lazy
        ? { onRunning: () => (answered = sh('cat /mnt/c')) } // the guest answers while its RAM arrives
        : { mode: 'eager' });
      assert.equal(r.mode, lazy ? 'lazy' : 'eager', r.fallback);
      if (lazy) {
        assert.ok(r.postcopy && r.postcopy.requests > 0, 'QEMU asked for pages');
        assert.equal(await answered, c.expect.split('\n')[0]);
      }
      assert.equal(await state(), c.expect);
      console.log(`${r.mode} restore: running ${r.runningMs} ms, all RAM ${r.ramMs} ms` +
        (r.postcopy ? `, ${r.postcopy.requests} requests` : ''));
    }
    // No prealloc for a restore's QEMU, and a postcopy hands the pages back first: the restore takes them all again.
    assert.equal(hugePages().available, 0, 'after the restores the guest holds all its huge pages again');
    const after = await svc.create('hp');
    console.log(`checkpoint after the restores: pause ${after.stats.pauseMs} ms`);
    await sh('echo 100 > /mnt/c'); // and it runs on
    assert.equal(await sh('cat /mnt/c'), '100');
  });

  test('a VM needing more huge pages than are free is refused before QEMU starts', async (t) => {
    if (!giveBack) return t.skip('this user cannot reserve huge pages (the 2 MiB pool needs root)');
    const big = 64; // the running VM holds every reserved page: none is free
    await rig.vms.create({ name: 'toobig', image: 'tiny', memoryMiB: big, hugepages: true }, 'u1');
    await assert.rejects(
      rig.vms.start('toobig'),
      /cannot start VM 'toobig': it needs \d+ free huge pages of 2 MiB .*sysctl vm\.nr_hugepages=/,
    );
    assert.equal(rig.vms.get('toobig').state, 'stopped');
  });
});
