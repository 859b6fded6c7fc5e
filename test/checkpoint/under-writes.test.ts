// Checkpoints proven under writes, on real QEMU (TCG), with the default pause recipe: a guest program
// (guest/memcheck.c) rewrites its 24 MiB as fast as it can, every block stamped with a generation and a checksum and
// verified before it is rewritten, while three checkpoints are taken; then 20 restores in place, lazy and eager mixed
// over the three, each followed by the program checking every block: zero inconsistencies, each restore back at its
// own instant. The program itself is shown to catch a single flipped byte.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CheckpointService } from '../../src/checkpoint/index.ts';
import { makeRig, bootTiny, type Rig } from './helpers.ts';
import { Memcheck, rateMiBs, type MemcheckStatus } from './memcheck.ts';

const MIB = 24;
const MIN_RATE = 64; // MiB/s while captured

describe('checkpoints of a guest rewriting its memory', () => {
  let rig: Rig;
  let svc: CheckpointService;
  let mc: Memcheck;
  const sh = async (cmd: string) => {
    const r = await rig.vms.exec('mw', ['sh', '-c', cmd], 60_000);
    assert.equal(r.exitCode, 0, r.stderr);
    return r.stdout.trim();
  };
  const chain: { id: string; mark: string; before: MemcheckStatus }[] = [];

  before(async () => {
    rig = await makeRig();
    svc = new CheckpointService(rig.vms, { root: CheckpointService.defaultRoot(rig.dataDir), qemuImg: rig.qemuImg });
    await bootTiny(rig, 'mw', 160);
    mc = new Memcheck(rig.vms, 'mw');
  });
  after(async () => {
    svc.close();
    await rig.destroy();
  });

  test(`three checkpoints while the guest rewrites ${MIB} MiB at ≥ ${MIN_RATE} MiB/s`, async () => {
    const start = await mc.start(MIB);
    const during: string[] = [];
    const kvm = (await rig.vms.qmp('mw').execute<{ enabled: boolean }>('query-kvm')).enabled;
    for (let i = 1; i <= 3; i++) {
      await sh(`echo ${i} > /tmp/mark`);
      const before = await mc.status();
      const m = await svc.create('mw');
      const afterCk = await mc.status();
      assert.equal(afterCk.pid, start.pid);
      // The default recipe: precopy under KVM once the disk backup is incremental; never under TCG, where QEMU 7.2's
      // precopy loses guest writes (such a checkpoint of this guest restored into a guest that hung).
      assert.equal(m.stats.pauseMode, kvm && i > 1 ? 'precopy' : 'background');
      during.push(
        `#${i}: ${m.stats.pauseMode} pause ${m.stats.pauseMs} ms, capture ${m.stats.durationMs} ms, ` +
          `${(m.stats.newBytes / 2 ** 20).toFixed(1)} MiB new, guest wrote ${rateMiBs(before, afterCk).toFixed(0)} MiB/s`,
      );
      chain.push({ id: m.id, mark: String(i), before });
    }
    const end = await mc.status();
    const rate = rateMiBs(start, end);
    console.log(`memcheck: ${rate.toFixed(0)} MiB/s over ${((end.ns - start.ns) / 1e9).toFixed(1)} s;`, during.join('; '));
    assert.equal(end.bad, 0, `inconsistent block while captured: ${end.first}`);
    assert.ok(rate >= MIN_RATE, `the guest rewrote ${rate.toFixed(0)} MiB/s while captured`);
    assert.ok(end.passes >= 3, `only ${end.passes} passes over the buffer`);
  });

  test('20 restores, lazy and eager, over the three: every block consistent, each at its instant', async () => {
    assert.equal(chain.length, 3);
    const times: string[] = [];
    for (let r = 0; r < 20; r++) {
      const c = chain[r % 3]!;
      const mode = r % 2 ? 'eager' : 'lazy';
      const res = await svc.restore(c.id, undefined, { mode });
      assert.equal(res.mode, mode, res.fallback);
      const { check, then: mark } = await mc.fullCheck('cat /tmp/mark');
      assert.equal(check.pid, c.before.pid, 'the same program, restored');
      assert.equal(check.bad, 0, `restore ${r} (${mode}) of ${c.id}: inconsistent block ${check.first}`);
      assert.equal(check.checked, (MIB * 1024) / check.blockKiB, 'every block checked');
      assert.ok(check.rewrites >= c.before.rewrites, 'it went on from the checkpoint');
      assert.equal(mark, c.mark, `restore ${r}: the checkpoint's instant`);
      times.push(`${mode[0]} ${res.verifyMs}/${Math.round(res.runningMs ?? -1)}/${res.ramMs}`);
    }
    console.log('restores (l|e checked before/running/all RAM, ms):', times.join(', '));
  });

  test('the program catches one flipped byte', async () => {
    // The program rewrites its blocks all the time: a flip that lands between its check of a block and its rewrite
    // of that block is overwritten unseen (a race of the test's write, not a miss of the checker; seen once in CI),
    // so up to three blocks are tried, each flip found or the test fails.
    for (const block of [5, 6, 7]) {
      const s = await mc.status();
      await mc.corrupt(s, block);
      const { check } = await mc.fullCheck();
      if (check.bad === 0) continue;
      assert.match(check.first ?? '', new RegExp(`^${block}:`), 'the flipped block is the first inconsistency');
      return;
    }
    assert.fail('none of three flipped bytes was found');
  });
});
