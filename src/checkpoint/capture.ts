// Live capture of a checkpoint: RAM and devices through QEMU's background snapshot, streamed over a unix socket
// into the parser and the page store as it arrives; the disk at the same instant through a backup job started in
// the same pause.
//
// The pause (see README.md, "Checkpoints: the pause"): on one QMP connection, without waiting between them,
//   stop                          the guest stops (STOP event); block devices are drained and flushed
//   transaction [bitmap, backup]  the disk's point in time (disk.ts)
//   migrate unix:<sock>           background-snapshot: device state is saved at once, RAM write-protected, and the
//                                 migration thread restarts the VM (RESUME event)
// The pause is STOP → RESUME from QEMU's own event timestamps. A VM paused by its user gets a plain precopy
// migration instead (background-snapshot would start it), and stays paused.
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { VmManager } from '../vm/manager.ts';
import type { QmpClient, QmpEvent } from '../vm/qmp/index.ts';
import { MigrationStreamParser, type ParsedStream } from './stream/index.ts';
import type { CheckpointStore, Manifest } from './store/index.ts';
import type { DiskCheckpoints, DiskPlan } from './disk.ts';

/** Capabilities that change the stream's layout or cannot go with background-snapshot: all must be off. */
const MUST_BE_OFF = [
  'xbzrle', 'compress', 'multifd', 'postcopy-ram', 'x-ignore-shared', 'validate-uuid', 'dirty-bitmaps', 'return-path',
  'pause-before-switchover', 'auto-converge', 'release-ram', 'x-colo', 'zero-copy-send', 'rdma-pin-all', 'block',
];

export interface CaptureOptions {
  vms: VmManager;
  store: CheckpointStore;
  disks: DiskCheckpoints;
  ref: string;
  kind?: 'manual' | 'scheduled';
  label?: string;
  progress?: (stage: string) => void;
  signal?: AbortSignal;
}

export const newCheckpointId = (): string => `${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${randomBytes(4).toString('hex')}`;

const eventMs = (e: QmpEvent) => e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000;

export async function captureCheckpoint(o: CaptureOptions): Promise<Manifest> {
  const started = performance.now();
  const id = newCheckpointId();
  const vm0 = o.vms.get(o.ref);
  const parent = o.store.list(vm0.id).at(-1)?.id ?? null;
  return o.vms.withQmp(o.ref, async (qmp, vm) => {
    const status = await qmp.queryStatus();
    const live = status.running;
    if (!live && !['paused', 'postmigrate'].includes(status.status)) {
      throw new Error(`cannot checkpoint VM '${vm.name}' in QEMU run state '${status.status}'`);
    }
    await setCapabilities(qmp, live);
    const guestReady = o.vms.isReady(vm.id);
    const sockPath = join(o.vms.paths(vm).dir, 'ckpt.sock');
    rmSync(sockPath, { force: true });
    const writer = await o.store.beginCheckpoint();
    const parser = new MigrationStreamParser(writer);
    let server: Server | undefined;
    let disk: DiskPlan | undefined;
    const events: QmpEvent[] = [];
    const offEvents = qmp.onEvent((e) => { if (e.event === 'STOP' || e.event === 'RESUME') events.push(e); });
    try {
      o.progress?.('preparing the disk image');
      disk = await o.disks.plan(qmp, vm.id, id);
      // Oriel listens; QEMU connects and streams. The parser consumes each chunk as it arrives.
      let parsed: ParsedStream | undefined;
      const received = new Promise<ParsedStream>((resolve, reject) => {
        server = createServer((sock: Socket) => {
          server!.close();
          sock.on('data', (chunk: Buffer) => {
            try {
              parser.push(chunk);
            } catch (e) {
              sock.destroy();
              reject(e);
            }
          });
          sock.on('error', reject);
          sock.on('end', () => {
            try {
              resolve((parsed = parser.end()));
            } catch (e) {
              reject(e);
            }
          });
        });
        server.on('error', reject);
      });
      received.catch(() => undefined);
      await new Promise<void>((r) => server!.listen(sockPath, r));

      o.progress?.('pausing');
      // Pipelined: QEMU runs them in order with no round trip between; the pause is stop → migration restart.
      const calls: Promise<unknown>[] = [];
      if (live) calls.push(qmp.execute('stop'));
      if (disk) calls.push(qmp.execute('transaction', { actions: disk.actions }));
      calls.push(qmp.execute('migrate', { uri: `unix:${sockPath}` }));
      const results = await Promise.allSettled(calls);
      const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
      if (failed) {
        await qmp.execute('migrate_cancel').catch(() => undefined);
        if (live && !(await qmp.queryStatus()).running) await qmp.execute('cont').catch(() => undefined);
        throw failed.reason;
      }
      o.progress?.('streaming RAM');
      await received;
      const mig = await waitMigration(qmp);
      if (mig.status !== 'completed') throw new Error(`QEMU's migration ended ${mig.status}${mig['error-desc'] ? `: ${mig['error-desc']}` : ''}`);
      o.progress?.('finishing the disk image');
      const diskRec = disk ? await disk.finish() : undefined;
      disk = undefined;
      const stop = events.find((e) => e.event === 'STOP');
      const resume = events.find((e) => e.event === 'RESUME');
      const pauseMs = stop && resume ? Math.round((eventMs(resume) - eventMs(stop)) * 100) / 100 : null;
      o.progress?.('writing the manifest');
      const v = await qmp.execute('query-version');
      return writer.finish(parsed!, {
        id, vmId: vm.id, vmName: vm.name, createdAt: new Date().toISOString(), parent, kind: o.kind ?? 'manual',
        ...(o.label ? { label: o.label } : {}),
        qemu: { version: `${v.qemu.major}.${v.qemu.minor}.${v.qemu.micro}`, machine: parsed!.machine },
        spec: { memoryMiB: vm.spec.memoryMiB, cpus: vm.spec.cpus, display: vm.spec.display, kernel: vm.spec.kernel ?? null, baseDisk: vm.spec.baseDisk ?? null },
        wasRunning: live,
        guestReady,
        disks: diskRec ? [diskRec] : [],
        stats: { pauseMs, durationMs: Math.round(performance.now() - started) },
      });
    } catch (e) {
      writer.abort();
      await disk?.abort();
      throw e;
    } finally {
      offEvents();
      (server as Server | undefined)?.close();
      rmSync(sockPath, { force: true });
    }
  }, { quietRunState: true });
}

async function setCapabilities(qmp: QmpClient, live: boolean): Promise<void> {
  const caps = await qmp.execute<{ capability: string; state: boolean }[]>('query-migrate-capabilities');
  const want = caps
    .filter((c) => (c.capability === 'background-snapshot' ? c.state !== live : MUST_BE_OFF.includes(c.capability) && c.state))
    .map((c) => ({ capability: c.capability, state: c.capability === 'background-snapshot' ? live : false }));
  if (want.length) await qmp.execute('migrate-set-capabilities', { capabilities: want });
}

interface MigrateInfo { status: string; 'error-desc'?: string; downtime?: number }

/** Polls `query-migrate` until the migration has ended (the stream ending means it is about to). */
export async function waitMigration(qmp: QmpClient, timeoutMs = 60_000): Promise<MigrateInfo> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const info = await qmp.execute<MigrateInfo>('query-migrate');
    if (['completed', 'failed', 'cancelled'].includes(info.status)) return info;
    if (Date.now() > end) throw new Error(`migration still ${info.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
