// Checkpoint benchmark on the tiny guest (TCG). One guest (default 2 GiB, 512 MiB of it filled with data that
// does not repeat), three scenarios: idle, and a loop in the guest dirtying memory at ~16 and ~128 MiB/s (copies of
// a random buffer at random byte offsets: every page it writes gets new, incompressible content). Per checkpoint:
//   pause       STOP → RESUME from QEMU's event timestamps (stored in the manifest)
//   duration    from the request to the manifest being durable
//   written     bytes the checkpoint added to the page store (pages, page tables, device state), and its disk image
//   floor       the compressed size (deflate level 1, page by page, as the store does) of the pages whose content
//               differs from the previous checkpoint's at the same place: what any incremental scheme must write
//   full        the migration stream (what a full snapshot to a file writes), and its compressed size
// and per scenario the restore time of its last checkpoint (QEMU start to guest running), the pause of QEMU's own
// background snapshot of the same guest (no disk, into a socket that drops it: the floor of the mechanism), and the
// pause of QEMU's own `savevm`. The machine's load average is printed beside them: the numbers move with it.
// Restores, lazy beside eager (`--restores=N` rounds of each, on the last checkpoint; with `--restore-only` the
// scenarios are skipped: two checkpoints, 16 MiB/s of writes between them, then the restores): time from QEMU
// started to the guest running (its RESUME event), to its first answer on the serial console (`cat` of a file in
// its RAM through the serial shell), and to all of its RAM in place (migration completed). The first lazy restore of
// a checkpoint has no recorded working set; the later ones push the pages the earlier ones were asked for first.
// Beside them, QEMU's own restore of the same state from a file, as `virsh save` / `virsh restore` do it
// (checkpoint-qemu-restore.ts): running = all RAM in place, nothing checked.
// With --hugepages the guest's RAM is in 2 MiB huge pages (the server grows the host's pool for it: needs root);
// without it, in ordinary memory.
// With --pauses (default rates 16,128) only the pause recipes are compared, interleaved round by round under each
// write rate, and their p50/p99 printed: Oriel's checkpoint in its precopy and background recipes, and QEMU's own
// recipes driven alone into a socket that drops the stream (checkpoint-recipes.ts): plain background snapshot
// (no disk), stop + disk + background snapshot, precopy + pause-before-switchover + disk, `savevm` (once per rate).
// Oriel collapses the guest's RAM into huge pages again after its background checkpoints (huge-again.ts); QEMU alone
// does not, so each round starts with QEMU's recipes on RAM as QEMU's own snapshot leaves it (one unmeasured plain
// background snapshot first), and Oriel's background checkpoint is measured right after an unmeasured one of its own
// (as when a VM's checkpoints follow each other); the share of QEMU's RAM in huge pages before each pause is printed.
// With --pauses --both, all of that twice in one run, on a guest in ordinary memory (QEMU's default) and then on one in
// huge pages (Oriel's default as root), and a last table of Oriel's default pause beside QEMU's best recipe on each.
// Usage: node --import tsx bench/checkpoint.ts [memoryMiB=2048] [dataMiB=512] [checkpointsPerScenario=3]
//          [rates=0,16,128] [--hugepages] [--restores=3] [--restore-only] [--pauses [--both]]
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { CheckpointService, type Manifest } from '../src/checkpoint/index.ts';
import { hugePagesSettled, lastHugeAgain } from '../src/checkpoint/huge-again.ts';
import type { RestoreResult } from '../src/checkpoint/restore.ts';
import { pauseFromEvents } from '../src/checkpoint/migration.ts';
import type { QmpEvent } from '../src/vm/qmp/index.ts';
import { makeRig, bootTiny } from '../test/checkpoint/helpers.ts';
import { percentile, QemuRecipes, type Recipe } from './checkpoint-recipes.ts';
import { qemuRestore, qemuSave } from './checkpoint-qemu-restore.ts';
import { ramIdOf } from '../src/vm/ram-backing.ts';

let huge = process.argv.includes('--hugepages');
const bothRams = process.argv.includes('--both');
const restoreOnly = process.argv.includes('--restore-only');
const pausesOnly = process.argv.includes('--pauses');
const restoreRounds = Number(process.argv.find((a) => a.startsWith('--restores='))?.split('=')[1] ?? 3);
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const mem = Number(args[0] ?? 2048);
const dataMiB = Number(args[1] ?? 512);
const perScenario = Number(args[2] ?? 3);
const rates = (args[3] ?? (pausesOnly ? '16,128' : '0,16,128')).split(',').map(Number);
const PAUSE_BETWEEN_MS = 5000;
const SRC_MiB = 64;

const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const MB = (b: number) => (b / 1e6).toFixed(b < 1e7 ? 2 : 1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const rig = await makeRig();
const svc = new CheckpointService(rig.vms, { root: CheckpointService.defaultRoot(rig.dataDir), qemuImg: rig.qemuImg });
const sh = async (cmd: string, timeoutMs = 600_000) => {
  const r = await rig.vms.exec('b', ['sh', '-c', cmd], timeoutMs);
  if (r.exitCode !== 0) throw new Error(`guest: ${cmd}: ${r.stderr}`);
  return r.stdout.trim();
};

interface Row { scenario: string; n: number; m: Manifest; load: string }
interface Scenario {
  name: string;
  rate: number;
  achieved: number | null;
  rows: Row[];
  plainPauseMs: number | null;
  savevmPauseMs: number | null;
  savevmMs: number;
  restoreMs?: number;
  load: string;
}

/** Pause of one event pair around `fn` (STOP → RESUME on the VM's QMP). */
async function pauseAround(fn: () => Promise<unknown>): Promise<number | null> {
  const qmp = rig.vms.qmp('b');
  const evs: QmpEvent[] = [];
  const off = qmp.onEvent((e) => { if (e.event === 'STOP' || e.event === 'RESUME') evs.push(e); });
  try {
    await fn();
    await sleep(200);
  } finally {
    off();
  }
  return pauseFromEvents(evs);
}

const recipes = new QemuRecipes(() => rig.vms.qmp('b'), rig.dataDir, rig.qemuImg);

/** QEMU's own background snapshot (what checkpoints build on, without the disk), into a socket that drops it. */
const plainBackgroundPause = () => recipes.run('plain background');

/** How much of QEMU's resident memory is in transparent huge pages (smaps_rollup), e.g. "2108/2233 MiB". */
function hugeShare(): string {
  try {
    const s = readFileSync(`/proc/${rig.vms.get('b').pid}/smaps_rollup`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0) >> 10;
    return `${kb('AnonHugePages')}/${kb('Rss')} MiB`;
  } catch {
    return '?';
  }
}

interface PauseRow { rate: number; achieved: number; kind: string; ms: number[]; load: string; huge: boolean }
const allPauses: PauseRow[] = [];

/** Oriel's default (background on huge pages) beside QEMU's best disk-consistent recipe on each kind of RAM. */
function defaultVersusBest(): void {
  const p50 = (r: PauseRow | undefined) => (r && r.ms.length ? percentile(r.ms, 50) : NaN);
  const consistent = ['stop + disk + background', 'precopy + pbs + disk', 'savevm'];
  console.log('\nOriel by default (RAM in huge pages, background recipe) against QEMU alone\'s best disk-consistent ' +
    'recipe, p50 (ms), from this run (precopy is inexact under TCG: QEMU 7.2 loses guest writes there):\n');
  console.log('| writes MiB/s | Oriel default p50 / p99 | QEMU best on ordinary RAM (its default) | ratio | ' +
    'QEMU best on huge pages | ratio |');
  console.log('|---|---|---|---|---|---|');
  for (const rate of rates) {
    const mine = allPauses.find((r) => r.huge && r.rate === rate && r.kind === 'Oriel background');
    const best = (h: boolean) => allPauses.filter((r) => r.huge === h && r.rate === rate && consistent.includes(r.kind))
      .map((r) => ({ kind: r.kind, p: p50(r) })).sort((a, b) => a.p - b.p)[0];
    const o = best(false), hp = best(true), m = p50(mine);
    const p99 = mine && mine.ms.length ? percentile(mine.ms, 99) : NaN;
    console.log(`| ${rate} | ${m} / ${p99} | ${o?.p} (${o?.kind}) | ${(o!.p / m).toFixed(1)}× | ` +
      `${hp?.p} (${hp?.kind}) | ${(hp!.p / m).toFixed(1)}× |`);
  }
}

/** Under each write rate, `perScenario` rounds of every recipe (interleaved, so they share the load), then p50/p99. */
async function pauseComparison(): Promise<void> {
  const kinds = ['plain background', 'stop + disk + background', 'precopy + pbs + disk', 'savevm', 'Oriel precopy',
    'Oriel background'] as const;
  const out: PauseRow[] = [];
  await svc.create('b', { pauseMode: 'background' }); // the first one backs the whole disk up: not measured
  for (const rate of rates) {
    console.error(`load ${load()}: pauses under ${rate} MiB/s`);
    await sh(dirtier(rate));
    await sleep(3000);
    const t0 = Date.now(), n0 = Number(await sh('cat /tmp/dirtied'));
    const ms = new Map<string, number[]>(kinds.map((k) => [k, []]));
    for (let i = 0; i < perScenario; i++) {
      await recipes.run('plain background'); // RAM as QEMU alone leaves it (not measured)
      await sleep(2000);
      for (const k of kinds) {
        let before = '';
        if (k === 'Oriel background') {
          await svc.create('b', { pauseMode: 'background' }); // its predecessor
          const t0 = Date.now();
          await hugePagesSettled(rig.vms.get('b').id);
          before = `collapse after it ${JSON.stringify(lastHugeAgain(rig.vms.get('b').id))}, waited ${Date.now() - t0} ms; `;
        }
        const thp = before + hugeShare();
        if (k === 'savevm' && i > 0) continue;
        let p: number | null;
        if (k.startsWith('Oriel')) {
          // Under TCG Oriel never chooses precopy (QEMU 7.2 loses guest writes: pause-mode.ts); here only its pause
          // is measured, as it would be under KVM.
          const m = await svc.create('b', k === 'Oriel background'
            ? { pauseMode: 'background' } : { pauseMode: 'precopy', inexactTcgPrecopy: true });
          p = m.stats.pauseMs;
        } else {
          p = await recipes.run(k as Recipe);
        }
        console.error(`  ${rate} MiB/s round ${i + 1}: ${k} ${p} ms (RAM in huge pages before: ${thp}; load ` +
          `${load().split(' ')[0]})`);
        if (p !== null) ms.get(k)!.push(p);
        await sleep(2000);
      }
    }
    const achieved = Math.round(((Number(await sh('cat /tmp/dirtied')) - n0) / ((Date.now() - t0) / 1000)) * 10) / 10;
    await sh('kill $(cat /tmp/dirtier.pid)');
    for (const k of kinds) out.push({ rate, achieved, kind: k, ms: ms.get(k)!, load: load(), huge });
  }
  allPauses.push(...out);
  console.log(`\nPauses (STOP → RESUME, ms) of a ${mem} MiB guest (tiny image, TCG, 1 vCPU${huge ? ', huge pages' : ''}),` +
    ` ${dataMiB} MiB of data, ${perScenario} rounds per recipe (savevm: 1); p99 = nearest rank (the max below 100` +
    ' samples). QEMU-alone recipes stream into a socket that drops the data.\n');
  console.log('| writes MiB/s (target / achieved) | recipe | disk | n | p50 | p99 | min–max | load at end |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of out) {
    const disk = r.kind === 'plain background' ? 'no' : 'yes';
    const f = (x: number) => (r.ms.length ? String(x) : '–');
    console.log(
      `| ${r.rate} / ${r.achieved} | ${r.kind} | ${disk} | ${r.ms.length} | ${f(percentile(r.ms, 50))} | ` +
        `${f(percentile(r.ms, 99))} | ${f(Math.min(...r.ms))}–${f(Math.max(...r.ms))} | ${r.load} |`,
    );
  }
}

/** Pages of `cur` whose content differs from `prev`'s at the same place, compressed as the store would. */
function floorOf(prev: Manifest | undefined, cur: Manifest): { floor: number; changed: number } {
  let floor = 0, changed = 0;
  const tables = (m: Manifest | undefined, id: string) => {
    const b = m?.stream.blocks.find((x) => x.id === id);
    return b ? svc.store.blockTable(b) : undefined;
  };
  for (const b of cur.stream.blocks) {
    const now = tables(cur, b.id)!, before = tables(prev, b.id);
    for (let o = 0; o < now.length; o += 32) {
      const h = now.subarray(o, o + 32);
      if (h.every((x) => x === 0)) continue;
      if (before && before.length > o && before.subarray(o, o + 32).equals(h)) continue;
      const page = svc.store.objects.get(h);
      floor += Math.min(page.length, deflateRawSync(page, { level: 1 }).length);
      changed++;
    }
  }
  return { floor, changed };
}

/** A loop in the guest that dirties `rate` MiB/s (paced by /proc/uptime, in chunks; as fast as it can if the guest is
 * slower), counting MiB in /tmp/dirtied. */
const dirtier = (rate: number) => {
  const chunk = Math.max(1, Math.round(rate / 8));
  const cs = 'read up _ < /proc/uptime; t=${up%.*}${up#*.}';
  return (
    `(${cs}; t0=$t; n=0; while :; do ${cs}; if [ $n -lt $(( (t - t0) * ${rate} / 100 )) ]; then ` +
    `dd if=/mnt/src of=/mnt/p bs=1M count=${chunk} seek=$((RANDOM % ${dataMiB - chunk})) iflag=skip_bytes ` +
    `skip=$(( (RANDOM * 32768 + RANDOM) % ${(SRC_MiB - chunk) * 2 ** 20} )) conv=notrunc 2>/dev/null; n=$((n + ${chunk})); echo $n > /tmp/dirtied; ` +
    'else sleep 0.05; fi; done) >/dev/null 2>&1 & echo $! > /tmp/dirtier.pid'
  );
};

const scenarios: Scenario[] = [];

/** A lazy restore of `m` into a new VM made for it (no check first: restore.ts `fresh`), then that VM deleted. */
async function restoreAsNew(m: Manifest) {
  const copy = await rig.vms.createLike('b', 'b-new', rig.vms.get('b').ownerId);
  try {
    let serial: Promise<number> | undefined;
    const r = await svc.restore(m.id, undefined, {
      targetVmId: copy.id, mode: 'lazy', fresh: true,
      onRunning: (x) => {
        serial = (async () => {
          await rig.vms.exec(copy.id, ['sh', '-c', 'cat /mnt/c 2>/dev/null; true'], 60_000);
          return Date.now() - x.qemuStartedAt;
        })();
      },
    });
    const at = (s: string) => r.timeline.find((x) => x.stage === s)?.ms;
    return {
      mode: 'lazy, as a new VM', running: r.runningMs, serial: await serial!, ram: r.ramMs, verify: r.verifyMs,
      spawn: null, qmp: null, fromSpawn: r.runningFromSpawnMs, fromQmp: r.runningFromQmpMs,
      extra: `${r.postcopy?.requests} requests; running ${at('RESUME (guest running)')} ms from the request`,
    };
  } finally {
    await rig.vms.forceStop(copy.id).catch(() => undefined);
    await rig.vms.delete(copy.id);
  }
}

/** Lazy and eager restores of `m`, alternating, `restoreRounds` each; prints their table. */
async function restoresSideBySide(m: Manifest): Promise<void> {
  const rows: {
    mode: string; running: number | null; serial: number; ram: number; verify: number; extra: string;
    spawn: number | null; qmp: number | null; fromSpawn: number | null; fromQmp: number | null;
  }[] = [];
  let lastLazy: RestoreResult | undefined;
  const saved = join(rig.dataDir, 'qemu-save.bin');
  let savedBytes = 0;
  for (let i = 0; i < restoreRounds; i++) {
    for (const mode of ['eager', 'lazy', 'lazy, as a new VM', 'QEMU from a file'] as const) {
      await sleep(2000);
      console.error(`load ${load()}: ${mode} restore ${i + 1}`);
      let serial: Promise<number> | undefined;
      const answer = async (startedAt: number) => {
        await sh('cat /mnt/c 2>/dev/null; true', 60_000);
        return Date.now() - startedAt;
      };
      if (mode === 'QEMU from a file') {
        // Asked once the restore is done, as after an eager restore (the VM shows running only then).
        const { running, startedAt } = await qemuRestore(rig.vms, 'b', saved, ramIdOf(m.stream.blocks));
        rows.push({ spawn: null, qmp: null, fromSpawn: null, fromQmp: null, mode, running,
          serial: await answer(startedAt), ram: running, verify: 0, extra: `${MB(savedBytes)} MB file` });
        continue;
      }
      if (mode === 'lazy, as a new VM') {
        rows.push(await restoreAsNew(m));
        continue;
      }
      let started = 0;
      const r = await svc.restore(m.id, undefined, {
        mode,
        onRunning: (x) => {
          started = x.qemuStartedAt;
          if (mode === 'lazy') serial = answer(x.qemuStartedAt);
        },
      });
      if (r.mode !== mode) throw new Error(`${mode} restore ran ${r.mode}: ${r.fallback}`);
      serial ??= answer(started);
      const pc = r.postcopy;
      if (mode === 'lazy') lastLazy = r;
      const at = (s: string) => r.timeline.find((x) => x.stage === s)?.ms;
      const gap = (a?: number, b?: number) => (a === undefined || b === undefined ? null : Math.round(b - a));
      rows.push({
        spawn: gap(at('QEMU start requested'), at('QEMU spawned')), qmp: gap(at('QEMU spawned'), at('QMP status')),
        fromSpawn: r.runningFromSpawnMs, fromQmp: r.runningFromQmpMs,
        mode, running: r.runningMs, serial: await serial, ram: r.ramMs, verify: r.verifyMs,
        extra: pc ? `${pc.requests} requests, ${pc.prefetchedPages} prefetched, ${pc.workingSetPages} of a recorded` +
          ` working set and ${pc.recentPages} recent first; running ${at('RESUME (guest running)')} ms from the request`
          : '',
      });
      // QEMU's own save of the state just restored (once): what its restores load.
      if (mode === 'eager' && i === 0) savedBytes = await qemuSave(rig.vms, 'b', saved);
    }
  }
  rmSync(saved, { force: true });
  console.log(`\nRestores of a ${mem} MiB guest (${dataMiB} MiB of data), from QEMU started (ms); checks before = objects read` +
    ' and hashed + disk written before the VM is stopped (not in the other columns); load now ' + load());
  console.log('(start → spawn: Oriel before exec; spawn → QMP ready: QEMU start-up until QMP negotiated and status read;' +
    ' running from spawn / from QMP ready: the RESUME event from those points)');
  console.log('| restore | running | start → spawn | spawn → QMP ready | running from spawn | running from QMP ready |' +
    ' first serial answer | all RAM in place | checks before | pages |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.mode} | ${r.running} | ${r.spawn} | ${r.qmp} | ${r.fromSpawn} | ${r.fromQmp} | ${r.serial} |` +
      ` ${r.ram} | ${r.verify} | ${r.extra} |`);
  }
  if (lastLazy) {
    console.log('\nTimeline of the last lazy restore (ms since requested; Δ since the previous mark):');
    console.log('| stage | ms | Δ |\n|---|---|---|');
    const t = [...lastLazy.timeline].sort((a, b) => a.ms - b.ms);
    t.forEach((x, i) => console.log(`| ${x.stage} | ${x.ms} | ${i ? (x.ms - t[i - 1]!.ms).toFixed(1) : ''} |`));
  }
}

/** The guest 'b' booted, with `dataMiB` of non-repeating data in its RAM. */
async function bootAndFill(): Promise<void> {
  console.error(`load ${load()}: booting a ${mem} MiB guest, filling ${dataMiB} MiB of its RAM`);
  await bootTiny(rig, 'b', mem, { hugepages: huge });
  // A random source, then the data: shifted copies of it (every page different, none compressible).
  await sh(
    `mkdir -p /mnt && mount -t tmpfs -o size=${dataMiB + SRC_MiB + 64}m t /mnt && dd if=/dev/urandom of=/mnt/src bs=1M count=${SRC_MiB} 2>/dev/null`,
  );
  for (let at = 0; at < dataMiB; at += 32) {
    await sh(
      `dd if=/mnt/src of=/mnt/p bs=1M count=${Math.min(32, dataMiB - at)} seek=${at} iflag=skip_bytes skip=$((${at} * 4099 + 17)) conv=notrunc 2>/dev/null`,
    );
  }
}

try {
  bench: {
  if (pausesOnly) {
    for (const h of bothRams ? [false, true] : [huge]) {
      huge = h;
      await bootAndFill();
      await recipes.open();
      await pauseComparison();
      recipes.close();
      await rig.vms.forceStop('b');
      await rig.vms.delete('b');
    }
    if (bothRams) defaultVersusBest();
    break bench;
  }
  await bootAndFill();
  await recipes.open();
  for (const rate of restoreOnly ? [] : rates) {
    const name = rate === 0 ? 'idle' : `${rate} MiB/s`;
    console.error(`load ${load()}: scenario ${name}`);
    if (rate > 0) await sh(dirtier(rate));
    await sleep(2000);
    const t0 = Date.now(), n0 = rate > 0 ? Number(await sh('cat /tmp/dirtied')) : 0;
    const rows: Row[] = [];
    for (let i = 1; i <= perScenario; i++) {
      const m = await svc.create('b');
      rows.push({ scenario: name, n: i, m, load: load() });
      console.error(
        `  checkpoint ${i}: pause ${m.stats.pauseMs} ms, ${m.stats.durationMs} ms, ${MB(m.stats.newBytes)} MB`,
      );
      await sleep(PAUSE_BETWEEN_MS);
    }
    const achieved =
      rate > 0
        ? Math.round(((Number(await sh('cat /tmp/dirtied')) - n0) / ((Date.now() - t0) / 1000)) * 10) / 10
        : null;
    const plainPauseMs = await plainBackgroundPause();
    const t1 = Date.now();
    const savevmPauseMs = await pauseAround(() =>
      rig.vms.qmp('b').execute('human-monitor-command', { 'command-line': 'savevm bench' }, { timeoutMs: 600_000 }),
    );
    const savevmMs = Date.now() - t1;
    await rig.vms.qmp('b').execute('human-monitor-command', { 'command-line': 'delvm bench' }, { timeoutMs: 600_000 });
    if (rate > 0) await sh('kill $(cat /tmp/dirtier.pid)');
    scenarios.push({ name, rate, achieved, rows, plainPauseMs, savevmPauseMs, savevmMs, load: load() });
    await sleep(2000);
  }

  if (restoreOnly) {
    await svc.create('b');
    await sh(dirtier(16));
    await sleep(4000);
    await sh('kill $(cat /tmp/dirtier.pid)');
    const m = await svc.create('b');
    await restoresSideBySide(m);
    break bench;
  }
  console.error(`load ${load()}: computing floors`);
  const all = scenarios.flatMap((s) => s.rows);
  const floors = all.map((r, i) => floorOf(i === 0 ? undefined : all[i - 1]!.m, r.m));
  const fullCompressed = floors[0]!.floor; // the first checkpoint had no parent: every non-zero page, compressed

  for (const s of scenarios) {
    console.error(`load ${load()}: restoring the last checkpoint of '${s.name}'`);
    s.restoreMs = (await svc.restore(s.rows.at(-1)!.m.id, undefined, { mode: 'eager' })).restoreMs;
    await sh('[ -f /tmp/dirtier.pid ] && kill $(cat /tmp/dirtier.pid) 2>/dev/null; true');
  }
  await restoresSideBySide(scenarios.at(-1)!.rows.at(-1)!.m);

  console.log(
    `\n${mem} MiB guest (tiny image, TCG, 1 vCPU${huge ? ', RAM in 2 MiB huge pages' : ''}), ${dataMiB} MiB of non-repeating data in RAM; ${perScenario} checkpoints per scenario, ${PAUSE_BETWEEN_MS / 1000} s apart; host: ${readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm)!.length} CPUs shared with other work (load average shown).\n`,
  );
  console.log(
    '| scenario | # | pause ms | duration s | written MB (RAM + disk) | floor MB (changed pages) | written / floor | full stream MB | full compressed MB | load |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  all.forEach((r, i) => {
    const m = r.m, f = floors[i]!;
    const disk = m.disks.reduce((a, d) => a + d.bytes, 0);
    const ratio = f.floor > 0 ? (m.stats.newBytes / f.floor).toFixed(2) : '–';
    console.log(
      `| ${r.scenario} | ${r.n}${i === 0 ? ' (first)' : ''} | ${m.stats.pauseMs} | ${(m.stats.durationMs / 1000).toFixed(1)} | ${MB(m.stats.newBytes)} + ${MB(disk)} | ${MB(f.floor)} (${f.changed} pages) | ${ratio} | ${MB(m.stats.streamBytes)} | ${MB(fullCompressed)} | ${r.load.split(' ')[0]} |`,
    );
  });
  console.log(
    '\n| scenario | dirtying MiB/s (target / achieved) | checkpoint pause ms (min–max) | QEMU background snapshot pause, no disk | QEMU `savevm` pause ms (total s) | restore of the last checkpoint s | load at end |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const s of scenarios) {
    const p = s.rows.map((r) => r.m.stats.pauseMs ?? NaN);
    console.log(
      `| ${s.name} | ${s.rate} / ${s.achieved ?? 0} | ${Math.min(...p)}–${Math.max(...p)} | ${s.plainPauseMs} | ${s.savevmPauseMs} (${(s.savevmMs / 1000).toFixed(1)}) | ${((s.restoreMs ?? 0) / 1000).toFixed(1)} | ${s.load} |`,
    );
  }
  }
} finally {
  recipes.close();
  svc.close();
  await rig.destroy();
}
