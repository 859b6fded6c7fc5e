// Restore: the VM's disk is replaced by the checkpoint's, QEMU starts with the same device model and `-incoming
// defer`, and Oriel sends the checkpoint's migration stream into `migrate-incoming`'s socket, every page checked
// against its hash on the way (docs/checkpoint-stream.md §1.6, §2.4).
//   lazy (default): Oriel is the postcopy source (postcopy-source.ts): the guest runs as soon as its device state is
//     loaded, its RAM follows (pages it asks for first). Needs userfaultfd for QEMU (userfaultfd.ts); VMs with huge-
//     page RAM and checkpoints of paused VMs are restored eagerly (postcopy's RUN would start a paused guest).
//   eager: the whole stream, then the guest continues.
// A restore in place checks everything it needs before it stops the VM: every object the checkpoint names is read
// and hashed, and its disk is written beside the VM's; a failure there leaves the VM as it was.
import { createConnection, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { VmManager } from '../vm/manager.ts';
import type { QmpClient, QmpEvent } from '../vm/qmp/index.ts';
import { fillMemfd } from '../host/memfd-fill.ts';
import { isAlive } from '../host/process.ts';
import type { VmRecord } from '../vm/records.ts';
import { waitUntil } from '../vm/wait.ts';
import { HUGE_PAGE_MIB, holdHugePages } from '../vm/hugepages.ts';
import { expectHugeRam, ramIdOf } from '../vm/ram-backing.ts';
import { PAGE_SIZE, StreamBuilder } from './stream/index.ts';
import type { CheckpointStore, Manifest } from './page-store/index.ts';
import { PagePool } from './page-store/page-pool.ts';
import type { DiskCheckpoints } from './disk.ts';
import { waitMigration } from './migration.ts';
import { PostcopySource, postcopyTuning, type PostcopyStats } from './postcopy-source.ts';
import { WorkingSets, type WorkingSet } from './working-set.ts';
import { userfaultfdUnusable } from './userfaultfd.ts';
import { RestoreTimeline, type TimelineMark } from './restore-timeline.ts';

export type RestoreMode = 'lazy' | 'eager';

export interface RestoreOptions {
  vms: VmManager;
  store: CheckpointStore;
  disks: DiskCheckpoints;
  id: string;
  progress?: (stage: string) => void;
  /** A line for the operation's log (the timeline at the end). */
  log?: (line: string) => void;
  /** Restore into this VM instead of the checkpoint's own (restore as a new VM: same device model, see
   * VmManager.createLike). */
  targetVmId?: string;
  /** Default lazy. */
  mode?: RestoreMode;
  /** Called once the guest runs again (lazy: while its RAM is still arriving). */
  onRunning?: (r: { runningMs: number; mode: RestoreMode; qemuStartedAt: number }) => void;
  /** Tests: why the host cannot do a lazy restore, instead of asking it (userfaultfd.ts). */
  uffdUnusable?: () => string | null;
  /** The target VM was made for this restore and has never run (restore as a new VM, from another server's store):
   * nothing of it can be lost, so a lazy restore starts it at once instead of reading and hashing every object first
   * (each page is still checked as it is sent; one that fails stops the new VM with the error). */
  fresh?: boolean;
}

export interface RestoreResult {
  manifest: Manifest;
  mode: RestoreMode;
  /** Asked for lazy, restored eagerly: why. */
  fallback?: string;
  /** From QEMU started to the guest running again (ms; QEMU's RESUME event), null when it stays paused. */
  runningMs: number | null;
  /** From QEMU started to all of its RAM in place and the migration completed (ms). */
  ramMs: number;
  /** Same as ramMs (older name). */
  restoreMs: number;
  /** Checks before the VM was touched: objects read and hashed, disk written beside it (ms). */
  verifyMs: number;
  streamBytes: number;
  postcopy?: PostcopyStats;
  /** Where the time went, ms since the restore was requested (restore-timeline.ts). */
  timeline: TimelineMark[];
  /** The guest running, from QEMU spawned and from its QMP ready (negotiated, status read) (ms; null: paused). */
  runningFromSpawnMs: number | null;
  runningFromQmpMs: number | null;
}

export async function restoreCheckpoint(o: RestoreOptions): Promise<RestoreResult> {
  const tl = new RestoreTimeline();
  const m = o.store.get(o.id);
  if (!m) throw new Error(`no checkpoint '${o.id}'`);
  const vm = o.vms.get(o.targetVmId ?? m.vmId);
  for (const k of ['memoryMiB', 'cpus', 'display'] as const) {
    if (m.spec[k] !== undefined && m.spec[k] !== vm.spec[k]) {
      throw new Error(
        `checkpoint ${m.id} was taken with ${k}=${String(m.spec[k])}, VM '${vm.name}' now has ${String(vm.spec[k])}: its device model must match`,
      );
    }
  }
  let mode: RestoreMode = o.mode ?? 'lazy';
  let fallback: string | undefined;
  if (mode === 'lazy') {
    fallback = !m.wasRunning
        ? 'the VM was paused in this checkpoint (a postcopy restore would start it)'
        : (o.uffdUnusable ?? userfaultfdUnusable)() ?? undefined;
    if (fallback) mode = 'eager';
  }
  const release = await o.store.holdWriter(); // no GC or verify rewrites packs while pages are read
  tl.mark('store held');
  let pool: PagePool | undefined;
  let forget = () => undefined as void;
  try {
    // Threads that check the checkpoint, then decode the pages QEMU is sent (postcopy-source.ts, sendEager). Started
    // now, ready before QEMU asks.
    pool = new PagePool();
    // Where each page is, looked up once, in the check (when there is one: checkFirst), not again as pages are sent.
    if (checkFirst(mode, vm, o.fresh)) forget = o.store.objects.keepLocations();
    return await restoreHeld(o, m, vm.id, mode, fallback, tl, pool);
  } finally {
    forget();
    release();
    void pool?.close();
  }
}

/** Whether a restore reads and hashes everything first: when a failure half-way would cost something, the VM running
 * now (in place), or a guest already running on partly restored RAM (lazy) unless that guest is a VM made for this
 * restore (`fresh`). */
const checkFirst = (mode: RestoreMode, vm: VmRecord, fresh = false) =>
  (mode === 'lazy' && !fresh) || !['stopped', 'crashed'].includes(vm.state);

async function restoreHeld(
  o: RestoreOptions,
  m: Manifest,
  vmId: string,
  mode: RestoreMode,
  fallback: string | undefined,
  tl: RestoreTimeline,
  pool: PagePool,
): Promise<RestoreResult> {
  const vm = o.vms.get(vmId);
  const paths = o.vms.paths(vm);
  const v0 = performance.now();
  if (checkFirst(mode, vm, o.fresh)) {
    o.progress?.('checking the checkpoint');
    try {
      await o.store.checkAll(m, undefined, undefined, pool);
      tl.mark('checkpoint checked');
    } catch (e) {
      throw new Error(
        `checkpoint ${m.id} cannot be restored: ${(e as Error).message}. VM '${vm.name}' was left as it was`,
      );
    }
  }
  // Everything the stream needs that does not need QEMU (page tables, page order, device-state bytes): before QEMU
  // starts, and before the VM is touched (a failure here leaves it as it was).
  let source: PostcopySource | undefined;
  // The guest RAM block keeps its checkpoint's name; its backing is chosen as QEMU starts (vm/ram-backing.ts).
  const ramId = ramIdOf(m.stream.blocks);
  let recorded: WorkingSet & { from: string | null } = { pages: [], early: 0, from: null };
  // Huge-page RAM goes by whole 2 MiB pages (stream/postcopy.ts).
  const sourceFor = (huge: boolean) => new PostcopySource(o.store, m, m.parent ? o.store.get(m.parent) : undefined,
    recorded, huge ? (id: string) => (id === ramId ? HUGE_PAGE_MIB * 2 ** 20 : PAGE_SIZE) : undefined, pool);
  if (mode === 'lazy') {
    try {
      const sets = new WorkingSets(o.store.root);
      if (postcopyTuning.useWorkingSet) recorded = sets.readNearest(m, (id) => o.store.get(id));
      source = sourceFor(expectHugeRam(vm.spec));
      await source.readAhead();
      if (recorded.from) o.log?.(`pushing first the working set recorded by lazy restores of ${recorded.from}`);
    } catch (e) {
      throw new Error(
        `checkpoint ${m.id} cannot be restored: ${(e as Error).message}. VM '${vm.name}' was left as it was`,
      );
    }
    tl.mark('page order and device state prepared');
  }
  let disk: { commit(): void; discard(): void } | undefined;
  if (m.disks.length) {
    o.progress?.('restoring the disk');
    disk = await o.disks.stageRestore(
      m.disks[0]!,
      paths.disk,
      vm.spec.baseDisk ? { file: vm.spec.baseDisk, format: vm.spec.baseFormat ?? 'qcow2' } : undefined,
    );
    tl.mark('disk staged');
  }
  const verifyMs = Math.round(performance.now() - v0);
  try {
    if (!['stopped', 'crashed'].includes(vm.state)) {
      o.progress?.('stopping the VM');
      await o.vms.forceStop(vm.id);
      tl.mark('old QEMU stopped');
    }
  } catch (e) {
    disk?.discard();
    throw e;
  }
  disk?.commit();
  // The new disk carries no dirty bitmap: the next checkpoint's backup is a full one.
  o.disks.setHead(vm.id, null);
  let t0 = 0, p0 = 0;
  let runningMs: number | null = null;
  let streamBytes = 0;
  let postcopy: PostcopyStats | undefined;
  // A lazy restore whose QEMU ends before the guest ran (QEMU 7.2 segfaults now and then as a postcopy destination
  // loads its devices: a NULL read in qemu-system-x86_64, seen in the kernel log) is done again, eagerly: no guest code
  // ran, so its disk is still the checkpoint's.
  for (let attempt = 0; ; attempt++) {
    o.progress?.('starting QEMU');
    t0 = Date.now();
    p0 = performance.now();
    tl.mark('QEMU start requested');
    await o.vms.start(vm.id, {
      incoming: { reason: 'waiting for a checkpoint to be restored' },
      ramId,
      settleRamLater: mode === 'lazy',
      onStage: (s) => tl.mark(s === 'spawned' ? 'QEMU spawned' : s),
    });
    const qemuPid = o.vms.get(vm.id).pid;
    if (mode === 'lazy' && m.guestReady) o.vms.markReady(vm.id);
    // A restoring QEMU's huge pages are not all taken yet (no prealloc for an incoming migration; a postcopy even
    // hands them back to the pool first and takes them again as pages come): promised meanwhile.
    const huge = !!o.vms.ramOf(vm.id)?.huge;
    const releaseHuge = huge ? holdHugePages(vm.spec.memoryMiB) : () => undefined;
    const onEvent = (e: QmpEvent) => {
      if (e.event !== 'RESUME' || runningMs !== null) return;
      const wall = e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000;
      runningMs = Math.round((wall - t0) * 10) / 10;
      tl.markWall('RESUME (guest running)', wall);
      o.onRunning?.({ runningMs, mode, qemuStartedAt: t0 });
    };
    const off = o.vms.qmp(vm.id).onEvent(onEvent);
    const st: StreamState = { mode, fallback, streamBytes: 0 };
    try {
      if (source && huge !== expectHugeRam(vm.spec)) source = sourceFor(huge);
      await streamInto(o, m, vm, st, source, tl, pool);
    } catch (e) {
      [mode, fallback] = [st.mode, st.fallback];
      if (mode === 'lazy') {
        // Its socket closes as it dies: give the process a second to be gone.
        const diedEarly = runningMs === null && !!qemuPid && await waitUntil(() => !isAlive(qemuPid), 1000, 20);
        // The guest may already run on RAM that is only partly there: it cannot go on.
        await o.vms.forceStop(vm.id).catch(() => undefined);
        if (diedEarly && attempt === 0) {
          fallback = `QEMU ended before the guest ran (${(e as Error).message}; see its log): restored eagerly`;
          o.log?.(fallback);
          tl.mark('QEMU ended early: eager restore');
          mode = 'eager';
          continue;
        }
        throw new Error(
          `lazy restore of checkpoint ${m.id} failed: ${(e as Error).message}. VM '${vm.name}' was stopped: ` +
            'its RAM could not be completed (its disk is the checkpoint\'s)',
        );
      }
      throw e;
    } finally {
      off();
      releaseHuge();
    }
    ({ mode, fallback, streamBytes, postcopy } = st);
    break;
  }
  const ramMs = Math.round(performance.now() - p0);
  tl.mark('restore done');
  const spawned = tl.at('QEMU spawned'), ready = tl.at('QMP status'), resumed = tl.at('RESUME (guest running)');
  const from = (a: number | undefined) =>
    a === undefined || resumed === undefined ? null : Math.round((resumed - a) * 10) / 10;
  o.log?.(`restore timeline (ms since requested): ${tl.summary()}`);
  return {
    timeline: tl.marks, runningFromSpawnMs: from(spawned), runningFromQmpMs: from(ready),
    manifest: m, mode, ...(fallback ? { fallback } : {}), runningMs, ramMs, restoreMs: ramMs, verifyMs, streamBytes,
    ...(postcopy ? { postcopy } : {}),
  };
}

/** How long a restore waits for the switch to link the VM's cards. */
const CARDS_LINKED_MS = 5_000;

/** The mode a restore goes on in (lazy becomes eager when QEMU cannot use postcopy) and what it sent. */
interface StreamState {
  mode: RestoreMode;
  fallback: string | undefined;
  streamBytes: number;
  postcopy?: PostcopyStats;
}

/** Starts the incoming migration in the VM's new QEMU and sends the checkpoint into it, as `st.mode` says. */
async function streamInto(
  o: RestoreOptions, m: Manifest, vm: VmRecord, st: StreamState, source: PostcopySource | undefined,
  tl: RestoreTimeline,
  pool: PagePool,
): Promise<void> {
  const paths = o.vms.paths(vm);
  await o.vms.withQmp(vm.id, async (qmp) => {
    if (st.mode === 'lazy') {
      // QEMU tests userfaultfd for real here (postcopy_ram_supported_by_host); nothing is sent yet, so a refusal
      // still leaves an eager restore into the same QEMU.
      try {
        await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'postcopy-ram', state: true }] });
        tl.mark('postcopy capability set');
      } catch (e) {
        st.mode = 'eager';
        st.fallback = `QEMU cannot use postcopy here: ${(e as Error).message}`;
      }
    }
    // The guest's cards linked first: QEMU sends frames as the guest resumes, and dies on one sent before its card
    // is ready (VmManager.waitCardsLinked).
    if (vm.spec.nics?.length) {
      if (await o.vms.waitCardsLinked(vm.id, CARDS_LINKED_MS)) tl.mark('cards linked');
      else o.log?.(`the VM's network cards were not linked within ${CARDS_LINKED_MS / 1000} s: restoring anyway`);
    }
    const sockPath = join(paths.dir, 'restore.sock');
    rmSync(sockPath, { force: true });
    await qmp.execute('migrate-incoming', { uri: `unix:${sockPath}` });
    tl.mark('migrate-incoming done');
    const sock = await connect(sockPath);
    tl.mark('migration socket connected');
    try {
      if (st.mode === 'lazy' && source) {
        o.progress?.('sending device state; the guest runs while its RAM follows');
        st.postcopy = await source.run(sock, (s) => tl.mark(s));
        st.streamBytes = st.postcopy.streamBytes;
        // For the next lazy restore of this checkpoint: the pages this guest asked for, pushed first then.
        try {
          new WorkingSets(o.store.root).add(m, source.asked, source.askedEarly);
        } catch (e) {
          o.log?.(`cannot record the working set: ${(e as Error).message}`);
        }
      } else {
        o.progress?.('sending RAM and device state');
        st.streamBytes = await sendEager(o.store, m, sock, pool);
        tl.mark('stream sent');
      }
    } finally {
      sock.destroy();
      rmSync(sockPath, { force: true });
    }
    const mig = await waitMigration(qmp);
    tl.mark(`migration ${mig.status}`);
    if (mig.status !== 'completed') throw new Error(`QEMU refused the checkpoint's stream: migration ${mig.status}`);
    if (m.guestReady) o.vms.markReady(vm.id);
    await continueIfRan(qmp, m);
    if (o.vms.ramOf(vm.id)?.huge) {
      // The pages never sent are holes in QEMU's memfd: taken from the pool now, not at the guest's first touch
      // (nor inside the next checkpoint's pause).
      const pid = o.vms.get(vm.id).pid;
      const f = pid ? await fillMemfd(pid, vm.spec.memoryMiB * 2 ** 20) : { failed: 'no QEMU pid' };
      // Unfilled, a page the guest touches later needs a surplus page then: the pool's limit stays raised for this
      // QEMU (its lease is settled when it ends) rather than risk its crash.
      if ('failed' in f) o.log?.(`huge pages not all taken after the restore: ${f.failed}`);
      else o.vms.settleRam(vm.id);
      tl.mark('huge pages all taken');
    }
  }, { ownRunState: st.mode === 'eager', action: 'restore' });
}

async function continueIfRan(qmp: QmpClient, m: Manifest): Promise<void> {
  const st = await qmp.queryStatus();
  if (m.wasRunning && !st.running) await qmp.execute('cont');
}

/** The checkpoint as one precopy stream into `sock`, its pages read a table ahead on `pool`'s threads. */
async function sendEager(store: CheckpointStore, m: Manifest, sock: Socket, pool: PagePool): Promise<number> {
  let n = 0;
  const w = new StreamBuilder({
    header: store.blob(m.stream.header),
    ramSectionId: m.stream.ramSectionId,
    blocks: m.stream.blocks.map((b) => ({ id: b.id, length: b.length })),
    deviceState: store.blob(m.stream.deviceState),
    vmdesc: m.stream.vmdesc ? store.blob(m.stream.vmdesc) : undefined,
  });
  const send = async (buf: Buffer) => {
    n += buf.length;
    if (!sock.write(buf)) await drained(sock);
  };
  for (const buf of w.start()) await send(buf);
  for await (const table of store.pageTables(m, pool)) {
    for (const p of table) {
      const buf = w.page(p);
      if (buf) await send(buf);
    }
  }
  for (const buf of w.end()) await send(buf);
  await new Promise<void>((resolve, reject) => {
    const stall = setTimeout(() => reject(new Error(`QEMU has not read the end of the restore stream in ${postcopyTuning.stallMs / 1000} s`)),
      postcopyTuning.stallMs);
    sock.end(() => { clearTimeout(stall); resolve(); });
  });
  return n;
}

/** Resolves when the socket can take more; rejects if it closes first, or QEMU has read nothing for the stall time. */
function drained(sock: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (e?: Error) => {
      sock.off('drain', onDrain);
      sock.off('close', onClose);
      clearTimeout(stall);
      if (e) reject(e);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error('QEMU closed the incoming socket (it refused the stream: see its log)'));
    const stall = setTimeout(() => done(new Error(`QEMU has read nothing of the restore stream for ${postcopyTuning.stallMs / 1000} s`)),
      postcopyTuning.stallMs);
    sock.once('drain', onDrain);
    sock.once('close', onClose);
  });
}

async function connect(path: string, timeoutMs = 10_000): Promise<Socket> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = createConnection(path);
        s.once('error', reject);
        s.once('connect', () => { s.off('error', reject); resolve(s); });
      });
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
