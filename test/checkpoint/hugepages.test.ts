// Huge-page guest RAM (vm/ram-backing.ts, vm/huge-pool.ts): a VM that did not choose gets a hugetlb memfd whenever
// the server can reserve it. As root the server lets each start take "surplus" pages from the kernel's 2 MiB pool,
// which return to the host when QEMU ends. Checkpoints of such a VM
// restore exactly (lazily too, by whole huge pages), onto huge pages or onto ordinary memory; a VM that must have
// huge pages and cannot is refused with a message that says what to do.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointService } from '../../src/checkpoint/index.ts';
import { checkHugePages, HUGE_PAGE_POOL } from '../../src/vm/hugepages.ts';
import { leaseHugePages, reconcileHugePool, type HugeLease, type Refusal } from '../../src/vm/huge-pool.ts';
import { ramIdOf } from '../../src/vm/ram-backing.ts';
import { makeRig, bootTiny, type Rig } from './helpers.ts';

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

test('the pool: a lease raises the surplus limit by what the free pool lacks, puts it back when settled; one at a time',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oriel-pool-'));
    try {
      const pool = join(dir, 'pool');
      mkdirSync(pool);
      const set = (f: string, v: number) => writeFileSync(join(pool, f), String(v));
      const limit = () => Number(readFileSync(join(pool, 'nr_overcommit_hugepages'), 'utf8'));
      set('nr_hugepages', 10); set('free_hugepages', 4); set('resv_hugepages', 0);
      set('nr_overcommit_hugepages', 0); set('surplus_hugepages', 6); // another VM's 6 surplus pages
      const meminfo = join(dir, 'meminfo');
      writeFileSync(meminfo, 'MemTotal:       16777216 kB\nMemFree:         1000 kB\nMemAvailable:    8388608 kB\n');
      const host = { pool, lockFile: join(dir, 'lock'), privileged: true, meminfo };
      assert.match(String((await leaseHugePages(64, { ...host, privileged: false }) as { why: string }).why), /root/);
      const a = await leaseHugePages(64, host) as HugeLease; // 32 pages, 4 free: 28 more, beside the 6 surplus
      assert.equal(a.lent, 28);
      assert.equal(limit(), 34);
      let bIn = false;
      const b = leaseHugePages(8, host).then((l) => { bIn = true; return l as HugeLease; });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(bIn, false, 'a second lease waits for the first');
      a.settle();
      a.settle(); // idempotent
      assert.equal(limit(), 0, 'the limit is back');
      const lb = await b;
      assert.equal(lb.lent, 0, '4 pages free: enough for 8 MiB');
      lb.settle();
      assert.equal(limit(), 0);
      // A process killed between raising the limit and settling: the next lease puts it back first.
      set('nr_overcommit_hugepages', 34);
      writeFileSync(host.lockFile, 'overcommit 0\n');
      const c = await leaseHugePages(8, host) as HugeLease;
      assert.equal(limit(), 0, 'the unsettled lease is put back first');
      c.settle();
      // Huge pages are never swapped: a lease that would leave the host less than its reserve is refused.
      writeFileSync(meminfo, 'MemTotal:       16777216 kB\nMemAvailable:    1572864 kB\n'); // 16 GiB, 1.5 GiB free
      const refused = await leaseHugePages(1024, host) as Refusal;
      assert.equal(refused.why, 'the host cannot spare that much memory for huge pages', 'no host figure for users');
      assert.match(String(refused.detail), /would have 520 MiB of memory left \(it keeps 1024\)/, 'for the log');
      assert.equal(limit(), 0);
      // A server that starts after a killed one puts the limit back at once.
      set('nr_overcommit_hugepages', 99);
      writeFileSync(host.lockFile, 'overcommit 0\n');
      await reconcileHugePool(host);
      assert.equal(limit(), 0);
      rmSync(join(pool, 'nr_overcommit_hugepages'));
      mkdirSync(join(pool, 'nr_overcommit_hugepages')); // a pool that cannot be changed
      assert.match(String((await leaseHugePages(64, host) as { why: string }).why), /could not be changed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

test('a restore names the RAM block as its checkpoint does', () => {
  assert.equal(ramIdOf([{ id: 'pc.ram' }, { id: 'vga.vram' }]), 'pc.ram');
  assert.equal(ramIdOf([{ id: 'ram0' }, { id: 'vga.vram' }]), 'ram0', 'huge-page VMs of earlier versions');
});

describe('a VM that did not choose, on a root server', () => {
  let rig: Rig;
  let svc: CheckpointService;
  const pool = (f: string) => Number(readFileSync(`${HUGE_PAGE_POOL}/${f}`, 'utf8'));
  // Other test files start VMs at the same time: the pool is read while holding the host's lease (nobody else is
  // changing it then). Its limit and its persistent pages (nr − surplus) are the host's own, and must stay so.
  const quiet = async () => {
    const l = await leaseHugePages(0) as HugeLease;
    try {
      return { limit: pool('nr_overcommit_hugepages'), persistent: pool('nr_hugepages') - pool('surplus_hugepages') };
    } finally {
      l.settle();
    }
  };
  let baseline = { limit: 0, persistent: 0 };
  // What QEMU's RAM memfd holds (hugetlbfs counts its pages in the file's blocks, mapped or not).
  const hugetlbMiB = (pid: number) => {
    const fd = readdirSync(`/proc/${pid}/fd`)
      .find((f) => readlinkSync(`/proc/${pid}/fd/${f}`).startsWith('/memfd:memory-backend-memfd '));
    return fd ? (statSync(`/proc/${pid}/fd/${fd}`).blocks * 512) / 2 ** 20 : 0;
  };
  const sh = async (cmd: string) => {
    const r = await rig.vms.exec('hp', ['sh', '-c', cmd], 90_000);
    assert.equal(r.exitCode, 0, r.stderr);
    return r.stdout.trim();
  };
  const state = () => sh('cat /mnt/c; md5sum /mnt/p | cut -c1-32');

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'the suite runs as root (the 2 MiB pool is root\'s)');
    baseline = await quiet();
    rig = await makeRig();
    svc = new CheckpointService(rig.vms, { root: CheckpointService.defaultRoot(rig.dataDir), qemuImg: rig.qemuImg });
    await bootTiny(rig, 'hp', MEM);
    await sh('mkdir -p /mnt && mount -t tmpfs t /mnt && dd if=/dev/urandom of=/mnt/p bs=1M count=8 2>/dev/null');
  });
  after(async () => {
    svc?.close();
    await rig?.destroy();
  });

  test('runs on huge pages the server reserved and gave back; checkpoints restore to their instants', async () => {
    const vm = rig.vms.get('hp');
    assert.deepEqual(rig.vms.ramOf(vm.id), { huge: true, id: 'pc.ram' });
    assert.match(readFileSync(`/proc/${vm.pid}/cmdline`, 'utf8'), /memory-backend-memfd,id=pc\.ram,.*hugetlb=on/);
    assert.equal(hugetlbMiB(vm.pid!), MEM, 'QEMU holds all its RAM in huge pages');
    assert.deepEqual(await quiet(), baseline, 'the pool is as it was: the guest\'s pages are surplus ones');
    const chain: { id: string; expect: string }[] = [];
    for (let i = 1; i <= 2; i++) {
      await sh(
        `echo ${i} > /mnt/c; dd if=/dev/urandom of=/mnt/p bs=4k count=64 seek=${i * 100} conv=notrunc 2>/dev/null`,
      );
      const expect = await state();
      const m = await svc.create('hp');
      assert.ok(m.stream.blocks.some((b) => b.id === 'pc.ram'), 'guest RAM is pc.ram, as with ordinary memory');
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
      assert.equal(rig.vms.ramOf(vm.id)?.huge, true);
      if (lazy) {
        assert.ok(r.postcopy && r.postcopy.requests > 0, 'QEMU asked for pages');
        assert.equal(await answered, c.expect.split('\n')[0]);
      }
      assert.equal(await state(), c.expect);
      console.log(`${r.mode} restore: running ${r.runningMs} ms, all RAM ${r.ramMs} ms` +
        (r.postcopy ? `, ${r.postcopy.requests} requests` : ''));
      // No prealloc for a restore's QEMU, and a postcopy hands the pages back first: the restore takes them all
      // again, and the pool is given back.
      assert.equal(hugetlbMiB(rig.vms.get('hp').pid!), MEM, `after the ${r.mode} restore: QEMU holds all its RAM`);
      assert.deepEqual(await quiet(), baseline, `after the ${r.mode} restore`);
    }
    const after = await svc.create('hp');
    console.log(`checkpoint after the restores: pause ${after.stats.pauseMs} ms`);
    // The same checkpoint onto ordinary memory: the RAM block has the same name.
    const spec = rig.vms.get('hp').spec;
    await rig.vms.forceStop('hp');
    assert.deepEqual(await quiet(), baseline, 'a stopped VM leaves nothing in the pool');
    rig.vms.setSpec(vm.id, { ...spec, hugepages: false });
    const r = await svc.restore(chain[1]!.id, undefined, { mode: 'eager' });
    assert.equal(rig.vms.ramOf(vm.id)?.huge, false);
    assert.equal(await state(), chain[1]!.expect, `${r.mode} restore onto ordinary memory`);
    await sh('echo 100 > /mnt/c'); // and it runs on
    assert.equal(await sh('cat /mnt/c'), '100');
    await rig.vms.forceStop('hp');
    rig.vms.setSpec(vm.id, spec);
  });
});
