// Restore: the VM's disk is replaced by the checkpoint's, QEMU starts with the same device model and `-incoming
// defer`, and Oriel writes the reassembled migration stream into `migrate-incoming`'s socket, reading every page
// from the store and checking its hash on the way (docs/checkpoint-stream.md §1.6, §2.4). The guest continues from
// the checkpoint's instant (or stays paused if it was paused then).
import { createConnection, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { VmManager } from '../vm/manager.ts';
import { writeStream } from './stream/index.ts';
import type { CheckpointStore, Manifest } from './store/index.ts';
import type { DiskCheckpoints } from './disk.ts';
import { waitMigration } from './migration.ts';

export interface RestoreOptions {
  vms: VmManager;
  store: CheckpointStore;
  disks: DiskCheckpoints;
  id: string;
  progress?: (stage: string) => void;
  /** Restore into this VM instead of the checkpoint's own (restore as a new VM: same device model, see
   * VmManager.createLike). */
  targetVmId?: string;
}

export interface RestoreResult {
  manifest: Manifest;
  /** From QEMU started to the guest running again (ms). */
  restoreMs: number;
  streamBytes: number;
}

export async function restoreCheckpoint(o: RestoreOptions): Promise<RestoreResult> {
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
  if (!['stopped', 'crashed'].includes(vm.state)) {
    o.progress?.('stopping the VM');
    await o.vms.forceStop(vm.id);
  }
  const paths = o.vms.paths(vm);
  if (m.disks.length) {
    o.progress?.('restoring the disk');
    await o.disks.restoreTo(
      m.disks[0]!,
      paths.disk,
      vm.spec.baseDisk ? { file: vm.spec.baseDisk, format: vm.spec.baseFormat ?? 'qcow2' } : undefined,
    );
  }
  // The new disk carries no dirty bitmap: the next checkpoint's backup is a full one.
  o.disks.setHead(vm.id, null);
  o.progress?.('starting QEMU');
  const t0 = performance.now();
  await o.vms.start(vm.id, { incoming: { reason: 'waiting for a checkpoint to be restored' } });
  let streamBytes = 0;
  await o.vms.withQmp(vm.id, async (qmp) => {
    const sockPath = join(paths.dir, 'restore.sock');
    rmSync(sockPath, { force: true });
    await qmp.execute('migrate-incoming', { uri: `unix:${sockPath}` });
    const sock = await connect(sockPath);
    o.progress?.('sending RAM and device state');
    try {
      const parts = {
        header: o.store.blob(m.stream.header),
        ramSectionId: m.stream.ramSectionId,
        blocks: m.stream.blocks.map((b) => ({ id: b.id, length: b.length })),
        deviceState: o.store.blob(m.stream.deviceState),
        vmdesc: m.stream.vmdesc ? o.store.blob(m.stream.vmdesc) : undefined,
      };
      for (const buf of writeStream(parts, o.store.pages(m))) {
        streamBytes += buf.length;
        if (!sock.write(buf)) await drained(sock);
      }
      sock.end();
    } catch (e) {
      sock.destroy();
      throw e;
    }
    const mig = await waitMigration(qmp);
    if (mig.status !== 'completed') throw new Error(`QEMU refused the checkpoint's stream: migration ${mig.status}`);
    rmSync(sockPath, { force: true });
    // The checkpoint was taken after the ready marker: this QEMU's console will not show it again.
    if (m.guestReady) o.vms.markReady(vm.id);
    const st = await qmp.queryStatus();
    if (m.wasRunning && !st.running) await qmp.execute('cont');
  }, { ownRunState: true, action: 'restore' });
  return { manifest: m, restoreMs: Math.round(performance.now() - t0), streamBytes };
}

/** Resolves when the socket can take more; rejects if it closes first. */
function drained(sock: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => { sock.off('close', onClose); resolve(); };
    const onClose = () => {
      sock.off('drain', onDrain);
      reject(new Error('QEMU closed the incoming socket (it refused the stream: see its log)'));
    };
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
