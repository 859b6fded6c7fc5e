// Live checkpoints of the tiny guest and their restore, on real QEMU (TCG): a chain of five checkpoints, each
// restored afterwards to exactly its instant (RAM contents, a counter, the disk), deletion of one in the middle
// (its disk image merged into the next), verify, retention.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, readFileSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointService, selectRetention, type FaultInjection } from '../../src/checkpoint/index.ts';
import { hugePagesSettled, lastHugeAgain } from '../../src/checkpoint/huge-again.ts';
import { makeRig, bootTiny, type Rig } from './helpers.ts';

describe('checkpoints of a running guest', () => {
  let rig: Rig;
  let svc: CheckpointService;
  const sh = async (cmd: string) => {
    const r = await rig.vms.exec('ck', ['sh', '-c', cmd], 90_000);
    assert.equal(r.exitCode, 0, r.stderr);
    return r.stdout.trim();
  };
  // RAM: a 4 MiB file in a tmpfs (its pages live in guest RAM only) and a counter; disk: a marker written with
  // O_DIRECT (so it is on the disk, not only in the guest's page cache) and read back the same way.
  const state = () =>
    sh('cat /mnt/c; md5sum /mnt/p | cut -c1-32; dd if=/dev/vda bs=512 count=1 iflag=direct 2>/dev/null | head -c 12');
  const chain: { id: string; expect: string; pauseMs: number | null; mode?: string }[] = [];
  /** Handed to the store and, per checkpoint, to its capture worker: set only around the full-disk test. */
  const faults: FaultInjection = {};

  /** After a background snapshot the server collapses QEMU's RAM into huge pages again (huge-again.ts): as root, all
   * 160 MiB of it, seen in QEMU's own smaps (or as much as the host's free memory allowed: EAGAIN/ENOMEM); otherwise
   * the reason it could not (not root: EPERM). */
  const hugeAgain = async (what: string) => {
    const vm = rig.vms.get('ck');
    await hugePagesSettled(vm.id, 30_000);
    const r = lastHugeAgain(vm.id);
    assert.ok(r, `${what}: a collapse ran`);
    if (process.getuid?.() !== 0) return assert.ok('skipped' in r, `${what}: ${JSON.stringify(r)}`);
    assert.ok('bytes' in r && !r.stopped, `${what}: ${JSON.stringify(r)}`);
    if (r.refused === 'EAGAIN' || r.refused === 'ENOMEM') return console.log(`${what}: ${JSON.stringify(r)}`);
    assert.deepEqual([r.bytes, r.refused], [160 * 2 ** 20, null], what);
    const thp = Number(/AnonHugePages:\s+(\d+)/.exec(readFileSync(`/proc/${vm.pid}/smaps_rollup`, 'utf8'))![1]) >> 10;
    assert.ok(thp >= 160, `${what}: ${thp} MiB of QEMU's memory in huge pages`);
  };

  before(async () => {
    rig = await makeRig();
    svc = new CheckpointService(rig.vms, {
      root: CheckpointService.defaultRoot(rig.dataDir),
      qemuImg: rig.qemuImg,
      faults,
    });
    await bootTiny(rig, 'ck', 160, { hugepages: false }); // ordinary memory: huge-page RAM is hugepages.test.ts's
    await sh('mkdir -p /mnt && mount -t tmpfs t /mnt && dd if=/dev/urandom of=/mnt/p bs=1M count=4 2>/dev/null');
  });
  after(async () => {
    svc.close();
    await rig.destroy();
  });

  test('five live checkpoints, the guest changing between them', async () => {
    const kvm = (await rig.vms.qmp('ck').execute<{ enabled: boolean }>('query-kvm')).enabled;
    for (let i = 1; i <= 5; i++) {
      await sh(
        `echo ${i} > /mnt/c; dd if=/dev/urandom of=/mnt/p bs=4k count=16 seek=${i * 40} conv=notrunc 2>/dev/null; printf 'disk-state-${i}' | dd of=/dev/vda bs=512 conv=sync oflag=direct 2>/dev/null`,
      );
      const expect = await state();
      // The `auto` recipe (the default): background for the first (its full disk backup is too big to copy in a
      // precopy pause), precopy after under KVM, background under TCG (QEMU 7.2's precopy loses guest writes there);
      // the third is asked for background.
      const m = await svc.create('ck', { kind: 'scheduled', pauseMode: i === 3 ? 'background' : 'auto' });
      assert.equal(rig.vms.get('ck').state, 'running', 'the checkpoint pause does not show as a pause');
      assert.equal(m.disks[0]!.mode, i === 1 ? 'full' : 'incremental');
      assert.equal(m.stats.pauseMode, kvm && i !== 1 && i !== 3 ? 'precopy' : 'background');
      assert.ok(m.stats.pauseMs !== null && m.stats.pauseMs < 1000, `pause ${m.stats.pauseMs} ms`);
      if (i > 1)
        assert.ok(m.stats.newBytes < 3_000_000, `checkpoint ${i} stored ${m.stats.newBytes} B (changed pages only)`);
      chain.push({ id: m.id, expect, pauseMs: m.stats.pauseMs, mode: m.stats.pauseMode });
      if (m.stats.pauseMode === 'background') await hugeAgain(`checkpoint ${i}`);
    }
    // After the last one the guest moves on: none of this may survive a restore.
    await sh(
      `echo 99 > /mnt/c; dd if=/dev/urandom of=/mnt/p bs=1M count=4 2>/dev/null; printf 'disk-state-X' | dd of=/dev/vda bs=512 conv=sync oflag=direct 2>/dev/null`,
    );
    assert.deepEqual(svc.list('ck').map((c) => c.id), chain.map((c) => c.id));
    console.log(`pauses (ms; ${chain.map((c) => c.mode).join(', ')}):`, chain.map((c) => c.pauseMs).join(', '));
  });

  test('each of the five restores to its instant (lazy), and the same as an eager restore', async () => {
    for (const c of [...chain].reverse()) {
      let answered: Promise<string> | undefined;
      // The guest answers on its serial console while its RAM is still arriving.
      const r = await svc.restore(c.id, undefined, { onRunning: () => (answered = sh('cat /mnt/c')) });
      assert.equal(r.mode, 'lazy', r.fallback);
      // runningMs comes from QEMU's RESUME timestamp, ramMs from this process's clock at the end: a few ms apart even
      // when a small guest's RAM is all in by the time it runs; the page requests below prove it ran before.
      assert.ok(r.runningMs !== null && r.runningMs < r.ramMs + 50, `running ${r.runningMs} ms, RAM ${r.ramMs} ms`);
      assert.ok(r.postcopy && r.postcopy.requests > 0, 'QEMU asked for pages');
      assert.equal(await answered, c.expect.split('\n')[0]);
      assert.equal(rig.vms.get('ck').state, 'running');
      assert.equal(await state(), c.expect, `checkpoint ${c.id}`);
      console.log(
        `lazy restore ${c.id}: running ${r.runningMs} ms, all RAM ${r.ramMs} ms, checked before ${r.verifyMs} ms,` +
          ` ${r.postcopy!.requests} requests, ${r.postcopy!.recentPages} recent pages first (${r.postcopy!.order})`,
      );
    }
    const c = chain.at(-1)!;
    const e = await svc.restore(c.id, undefined, { mode: 'eager' });
    assert.equal(e.mode, 'eager');
    assert.equal(await state(), c.expect, 'eager restore: the same content');
    console.log(`eager restore ${c.id}: running ${e.runningMs} ms, all RAM ${e.ramMs} ms`);
    // A host where QEMU may not use userfaultfd: said, and restored eagerly.
    const f = await svc.restore(c.id, undefined, { uffdUnusable: () => 'no userfaultfd (test)' });
    assert.equal(f.mode, 'eager');
    assert.equal(f.fallback, 'no userfaultfd (test)');
    assert.equal(await state(), c.expect);
  });

  test('a lazy restore whose QEMU ends before the guest ran is done again, eagerly, to the same instant', async () => {
    // QEMU 7.2 sometimes segfaults as a postcopy destination loading its devices; here it is killed at that point:
    // its migration socket is connected and nothing is sent yet.
    const c = chain.at(-1)!;
    let killed = 0;
    const progress = Object.assign((stage: string) => {
      if (/^sending device state/.test(stage) && !killed) {
        killed = rig.vms.get('ck').pid!;
        process.kill(killed, 'SIGKILL');
      }
    }, {});
    const r = await svc.restore(c.id, progress);
    assert.ok(killed, 'the lazy restore reached its stream');
    assert.equal(r.mode, 'eager');
    assert.match(r.fallback ?? '', /^QEMU ended before the guest ran \(.*\): restored eagerly$/);
    assert.notEqual(rig.vms.get('ck').pid, killed);
    assert.equal(rig.vms.get('ck').state, 'running');
    assert.equal(await state(), c.expect);
  });

  test('a checkpoint taken after a restore starts a new disk chain and restores too', async () => {
    await sh('echo 42 > /mnt/c');
    const expect = await state();
    const m = await svc.create('ck');
    assert.equal(m.disks[0]!.mode, 'full');
    await sh('echo 43 > /mnt/c');
    await svc.restore(m.id);
    assert.equal(await state(), expect);
    await svc.delete([m.id]);
  });

  test('a capture worker that fails mid-stream (disk full) gives the checkpoint up cleanly; the guest runs on', async () => {
    const before = svc.list('ck').map((c) => c.id);
    const packs = readdirSync(join(svc.store.root, 'packs')).sort();
    await sh('dd if=/dev/urandom of=/mnt/p bs=1M count=4 conv=notrunc 2>/dev/null; echo 7 > /mnt/c');
    faults.failAfterBytes = 1_000_000; // the worker runs out of space within its 4 MiB of new pages
    try {
      await assert.rejects(svc.create('ck'), /ENOSPC/);
    } finally {
      delete faults.failAfterBytes;
    }
    assert.equal(rig.vms.get('ck').state, 'running');
    assert.equal(await sh('cat /mnt/c'), '7', 'the guest answers');
    // QEMU 7.2 would leave guest RAM write-protected after a cancelled background snapshot: it was drained instead.
    assert.equal((await rig.vms.qmp('ck').execute<{ status: string }>('query-migrate')).status, 'completed');
    assert.equal(
      await sh('echo 8 > /mnt/c; dd if=/dev/urandom of=/mnt/p bs=1M count=4 conv=notrunc 2>/dev/null; cat /mnt/c'),
      '8',
      'the guest writes to its RAM',
    );
    assert.deepEqual(svc.list('ck').map((c) => c.id), before, 'no checkpoint appeared');
    assert.deepEqual(readdirSync(join(svc.store.root, 'packs')).sort(), packs, 'the worker deleted its pack');
    const vmDir = rig.vms.paths(rig.vms.get('ck')).dir;
    assert.deepEqual(
      readdirSync(vmDir).filter((f) => f.startsWith('ckpt') && f !== 'ckpt-worker.log'),
      [],
      'no worker files left',
    );
    const diskDir = join(svc.store.root, 'disks', rig.vms.get('ck').id);
    const known = new Set([
      ...svc.list('ck').map((c) => svc.show(c.id).disks[0]!.file),
      svc.disks.head(rig.vms.get('ck').id)?.file,
    ]);
    assert.deepEqual(
      readdirSync(diskDir).filter((f) => f.endsWith('.qcow2') && !known.has(join('disks', rig.vms.get('ck').id, f))),
      [],
      'its disk image was deleted',
    );
    // The next checkpoint works and restores exactly.
    const expect = await state();
    const m = await svc.create('ck');
    await sh('echo 9 > /mnt/c');
    await svc.restore(m.id);
    assert.equal(await state(), expect);
    await svc.delete([m.id]);
  });

  test('deleting a checkpoint in the middle keeps the others restorable; verify is clean', async () => {
    const mid = chain.splice(2, 1)[0]!;
    const { removedImages } = await svc.delete([mid.id]);
    assert.equal(removedImages.length, 1);
    assert.ok((await svc.verify()).ok);
    for (const c of [chain[2]!, chain[0]!]) {
      await svc.restore(c.id);
      assert.equal(await state(), c.expect);
    }
  });

  test('retention: manual ones are kept, dry-run deletes nothing', async () => {
    const before = svc.list('ck').length;
    const plan = await svc.prune('ck', { keepLast: 2 }, { dryRun: true });
    assert.equal(plan.delete.length, before - 2);
    assert.equal(svc.list('ck').length, before);
    const sel = selectRetention([
      { id: 'a', createdAt: '2026-01-01T10:00:00Z', kind: 'scheduled' },
      { id: 'b', createdAt: '2026-01-01T10:30:00Z', kind: 'scheduled' },
      { id: 'c', createdAt: '2026-01-02T09:00:00Z', kind: 'scheduled' },
      { id: 'm', createdAt: '2025-01-01T00:00:00Z', kind: 'manual' },
    ], { daily: 2 });
    assert.deepEqual(sel.drop, ['a']);
    assert.deepEqual(sel.keep.sort(), ['b', 'c', 'm']);
  });

  test('a corrupted page makes a restore in place fail before the running VM is touched', async () => {
    await sh('dd if=/dev/urandom of=/mnt/p bs=4k count=8 seek=900 conv=notrunc 2>/dev/null; echo 77 > /mnt/c');
    const m = await svc.create('ck');
    const parentRefs = new Set(svc.store.references(svc.show(m.parent!)));
    // A page of guest RAM that this checkpoint wrote (not its page tables, device state or vmdesc: a lazy restore
    // into a new VM reads pages and tables only, and should then meet it as it is sent).
    const ram = m.stream.blocks.reduce((a, b) => (b.length > a.length ? b : a));
    const table = svc.store.blockTable(ram);
    let own = '';
    for (let i = 0; i < table.length / 32 && !own; i++) {
      const h = table.subarray(i * 32, i * 32 + 32);
      if (h.some((x) => x !== 0) && !parentRefs.has(h.toString('hex'))) own = h.toString('hex');
    }
    assert.ok(own, 'the checkpoint has pages of its own');
    const loc = svc.store.objects.db
      .prepare('SELECT pack, offset FROM objects WHERE hash = ?')
      .get(Buffer.from(own, 'hex')) as { pack: number; offset: number };
    const pack = join(svc.store.root, 'packs', `${String(loc.pack).padStart(8, '0')}.pack`);
    const fd = openSync(pack, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, loc.offset + 41 + 100);
    writeSync(fd, Buffer.from([b[0]! ^ 0xff]), 0, 1, loc.offset + 41 + 100);
    closeSync(fd);
    await sh('echo 78 > /mnt/c');
    const pid = rig.vms.get('ck').pid;
    for (const mode of ['lazy', 'eager'] as const) {
      await assert.rejects(svc.restore(m.id, undefined, { mode }), (e: Error) => {
        assert.match(e.message, /cannot be restored: object [0-9a-f]+… .*(does not match its hash|cannot inflate)/);
        assert.match(e.message, /VM 'ck' was left as it was/);
        return true;
      });
      assert.equal(rig.vms.get('ck').state, 'running');
      assert.equal(rig.vms.get('ck').pid, pid, 'the same QEMU');
      assert.equal(await sh('cat /mnt/c'), '78', 'the guest runs on, untouched');
    }
    // Into a VM made for the restore (restore as a new VM): no full check first, the guest runs at once; the damaged
    // page still fails it as it is sent, and that new VM is stopped; a sound checkpoint restores as ever.
    const owner = rig.vms.get('ck').ownerId;
    const copy = await rig.vms.createLike('ck', 'ck-copy', owner);
    await assert.rejects(svc.restore(m.id, undefined, { targetVmId: copy.id, mode: 'lazy', fresh: true }),
      /object [0-9a-f]+… .*(does not match its hash|cannot inflate)/);
    assert.ok(['stopped', 'crashed'].includes(rig.vms.get(copy.id).state), rig.vms.get(copy.id).state);
    const sound = await svc.restore(m.parent!, undefined, { targetVmId: copy.id, mode: 'lazy', fresh: true });
    assert.equal(sound.mode, 'lazy');
    assert.ok(!sound.timeline.some((x) => x.stage === 'checkpoint checked'), 'no check before a fresh VM\'s restore');
    const r = await rig.vms.exec(copy.id, ['sh', '-c', 'cat /mnt/c'], 30_000);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(rig.vms.get('ck').pid, pid, 'the VM restored from is untouched');
    await rig.vms.forceStop(copy.id);
    await rig.vms.delete(copy.id);
    await svc.delete([m.id]);
  });
});
