// The capture worker: the receiving side of one checkpoint, in a process of its own that outlives the server.
// Usage (the server spawns it, detached, in its own session): node --import tsx main.ts <vmDir>/ckpt-worker.job.json
//
// QEMU 7.2's background snapshot must be drained to its end: if its receiver dies, QEMU can wedge (its main thread
// blocked on a write-protected page nobody will unprotect) or leave guest RAM write-protected (the guest freezes).
// So the receiver is this process: it listens on the migration socket, parses the stream, stores the pages, seals
// the objects (fsync, index) and, once told the disk backup and the pause, writes the manifest. While the server
// lives, the server drives QEMU (the pause, the disk job, cancelling) and this worker only receives. When the
// server dies (its control connection closes) the worker takes QMP over and ends the checkpoint alone: it finishes
// it if the migration ran (drain, wait for the disk job, manifest), or aborts it cleanly (migrate_cancel, the disk
// job cancelled and its image deleted, the guest continued), and writes the outcome for the next server.
// After a failure it keeps reading the socket (and drops what it reads) until QEMU closes it: a receiver that
// stops reading is what wedges QEMU.
import { createServer, type Server, type Socket } from 'node:net';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { QmpClient } from '../../vm/qmp/index.ts';
import { isAlive } from '../../host/process.ts';
import { DiskCheckpoints, type DiskJob } from '../disk.ts';
import type { PauseMode } from '../pause-mode.ts';
import { abandonMigration, MIGRATION_RUNNING, waitMigration, type MigrateInfo } from '../migration.ts';
import {
  CheckpointStore,
  PagePool,
  captureThreads,
  defaultPoolSize,
  writeFileAtomic,
  type CheckpointWriter,
  type DiskRecord,
  type Manifest,
} from '../page-store/index.ts';
import { MigrationStreamParser } from '../stream/index.ts';
import {
  readLines,
  sendLine,
  workerFiles,
  type ServerMessage,
  type WorkerJob,
  type WorkerMessage,
  type WorkerResult,
} from './protocol.ts';

/** With no stream bytes for this long (QEMU stalled or gone), the worker gives the checkpoint up. */
const STREAM_STALL_MS = 120_000;
/** A worker nobody connected to and no migration reached is given up after this long. */
const IDLE_LIMIT_MS = 3 * 60_000;

const jobPath = process.argv[2]!;
const job = JSON.parse(readFileSync(jobPath, 'utf8')) as WorkerJob;
const files = workerFiles(job.vmDir);
writeFileSync(files.pid, `${process.pid}\n`, { mode: 0o600 });
const log = (msg: string) =>
  process.stdout.write(`${new Date().toISOString()} capture worker ${process.pid} (${job.checkpointId}): ${msg}\n`);
const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e));

type State = 'waiting' | 'streaming' | 'received' | 'committed' | 'failed';
let state: State = 'waiting';
/** The state now (read through a call: it changes in callbacks, which TypeScript's narrowing does not see). */
const now = (): State => state;
let error = '';
let bytes = 0;
let lastBytesAt = Date.now();
let connected = false;
let plan: DiskJob | null | undefined;
/** The pause recipe (the server says it with the plan); a precopy waits for the server in QEMU's pause. */
let pauseMode: PauseMode | null | undefined;
let pauseMs: number | null = null;
let control: Socket | undefined;
let everControlled = false;
let doneByServer = false;
let orphaned = false;
let migSock: Socket | undefined;
let migClosed = false;
let streamEnded = false;
let firstByteAt = 0;

const store = new CheckpointStore(job.storeRoot, { worker: { marker: files.job }, faults: job.faults });
const disks = new DiskCheckpoints(job.storeRoot, 'qemu-img');
const parentManifest = job.meta.parent ? store.get(job.meta.parent) : undefined;
// Pages are hashed and compressed on a small pool of threads (ORIEL_CAPTURE_THREADS, default one per core up to 4;
// 0: all in this thread), parsed and written here.
const threads = (() => {
  try {
    return captureThreads();
  } catch (e) {
    log(`${errMsg(e)}: using ${defaultPoolSize()} threads`);
    return defaultPoolSize();
  }
})();
const pool = threads > 0 ? new PagePool(threads) : undefined;
let writer: CheckpointWriter | undefined = await store.beginCheckpoint({ parent: parentManifest, pool });
const parser = new MigrationStreamParser(writer);

const send = (msg: WorkerMessage) => control && sendLine(control, msg);

function writeResult(ok: boolean, finishedBy: WorkerResult['finishedBy']): void {
  const r: WorkerResult = {
    checkpointId: job.checkpointId, operationId: job.operationId, ok, ...(ok ? {} : { error }), finishedBy,
    finishedAt: new Date().toISOString(),
  };
  writeFileAtomic(files.result, JSON.stringify(r));
}

/** The checkpoint cannot be taken: nothing of it becomes visible. The migration socket keeps being drained. */
function fail(e: unknown): void {
  if (state === 'failed' || state === 'committed') return;
  error = errMsg(e);
  state = 'failed';
  log(`failed: ${error}`);
  writer?.abort();
  writer = undefined;
  migSock?.resume(); // drained from here on, whatever the pipeline held
  writeResult(false, orphaned ? 'worker' : 'server');
  send({ type: 'failed', error });
}

function commit(disk: DiskRecord | null, pause: number | null): Manifest {
  const m = writer!.publish({
    ...job.meta,
    createdAt: new Date().toISOString(),
    disks: disk ? [disk] : [],
    stats: { pauseMs: pause, durationMs: Date.now() - job.requestedAt, ...(pauseMode ? { pauseMode } : {}) },
  });
  writer = undefined;
  state = 'committed';
  writeResult(true, orphaned ? 'worker' : 'server');
  log(`checkpoint committed (${m.stats.streamBytes} stream bytes, ${m.stats.newBytes} new bytes)`);
  return m;
}

// ---- the migration socket: QEMU connects once and streams ----
const migServer: Server = createServer((sock) => {
  migServer.close();
  migSock = sock;
  connected = true;
  if (state === 'waiting') state = 'streaming';
  log('QEMU connected: receiving the stream');
  sock.on('data', (chunk: Buffer) => {
    if (!bytes) firstByteAt = Date.now();
    bytes += chunk.length;
    lastBytesAt = Date.now();
    if (state !== 'streaming') return; // failed: drain, drop
    try {
      parser.push(chunk);
      // The page pipeline is full: read again once it has room (QEMU waits on the socket meanwhile).
      if (writer?.congested) {
        sock.pause();
        void writer.room().finally(() => sock.resume());
      }
    } catch (e) {
      fail(e);
    }
  });
  sock.on('end', () => {
    if (state !== 'streaming') return;
    streamEnded = true;
    void (async () => {
      try {
        const parsed = parser.end();
        await writer!.flushPages(); // the pages still in the pipeline
        if (now() !== 'streaming') return;
        writer!.seal(parsed);
        state = 'received';
        log(`stream received and sealed: ${parsed.stats.bytes} bytes (${Date.now() - firstByteAt} ms from the first)`);
        send({ type: 'received', streamBytes: parsed.stats.bytes });
      } catch (e) {
        fail(e);
      }
    })();
  });
  sock.on('error', (e) => { if (state === 'streaming') fail(`the migration socket failed: ${e.message}`); });
  sock.on('close', () => {
    migClosed = true;
    if (state === 'streaming' && !streamEnded) fail('the migration stream ended early (QEMU stopped sending)');
  });
});
rmSync(files.migration, { force: true });
await new Promise<void>((r) => migServer.listen(files.migration, r));

// ---- the control socket: the server connects once ----
const ctlServer: Server = createServer((sock) => {
  if (control || orphaned) return void sock.destroy();
  control = sock;
  everControlled = true;
  readLines<ServerMessage>(sock, (msg) => void onServer(msg));
  sock.on('error', () => undefined);
  sock.on('close', () => {
    control = undefined;
    if (!doneByServer) void orphan('its control connection closed');
  });
  send({ type: 'ready' });
});
rmSync(files.control, { force: true });
await new Promise<void>((r) => ctlServer.listen(files.control, r));
log(`listening (job ${jobPath})`);

async function onServer(msg: ServerMessage): Promise<void> {
  switch (msg.type) {
    case 'plan':
      plan = msg.disk;
      pauseMode = msg.pauseMode ?? null;
      break;
    case 'paused':
      pauseMs = msg.pauseMs;
      break;
    case 'commit':
      if (state !== 'received')
        return send({ type: 'failed', error: error || `cannot commit: the stream is ${state}` });
      try {
        send({ type: 'committed', manifest: commit(msg.disk, msg.pauseMs) });
      } catch (e) {
        fail(e);
      }
      break;
    case 'abort':
      fail(msg.reason);
      break;
    case 'done':
      doneByServer = true;
      await exit(0);
  }
}

let lastStatus = '';
const heartbeat = setInterval(() => {
  send({ type: 'progress', bytes, connected });
  const status = `${state} ${bytes}${orphaned ? ' orphaned' : ''}\n`;
  if (status !== lastStatus) writeFileSync(files.status, (lastStatus = status)); // its mtime: the last progress
  const now = Date.now();
  if (!everControlled && !isAlive(job.serverPid)) void orphan('the server died before it connected');
  else if (state === 'streaming' && now - lastBytesAt > STREAM_STALL_MS)
    fail(`no stream data for ${STREAM_STALL_MS / 1000} s`);
  else if (!connected && !orphaned && (now - job.requestedAt > IDLE_LIMIT_MS || !isAlive(job.qemuPid))) {
    // Nothing will come: QEMU is gone, or the server never made the pause. Nothing in QEMU depends on us.
    fail(isAlive(job.qemuPid) ? 'no migration reached the worker' : 'QEMU is no longer running');
    void exit(1);
  }
}, 1000);

/** The server is gone before it said `done`: end the checkpoint alone, then exit. */
async function orphan(why: string): Promise<void> {
  if (orphaned) return;
  orphaned = true;
  log(`the server is gone (${why}); state ${state}: ending the checkpoint alone`);
  if (state === 'committed') return exit(0);
  let qmp: QmpClient | undefined;
  try {
    if (!isAlive(job.qemuPid)) throw new Error('QEMU is no longer running');
    // QEMU serves one QMP client at a time: the dead server's connection is closed, so ours is next. (A restarted
    // server waits for this worker to exit before it connects.)
    qmp = await QmpClient.connect(job.qmpSocket, { timeoutMs: 30_000, retryUntilMs: 5_000 });
  } catch (e) {
    fail(`the server stopped during the checkpoint and QEMU could not be reached: ${errMsg(e)}`);
    if (job.disk && !isAlive(job.qemuPid)) await disks.abort(undefined, plan ?? job.disk);
    return exit(1);
  }
  try {
    if (state !== 'failed' && !connected) {
      const mig = await qmp.execute<MigrateInfo>('query-migrate');
      if (!MIGRATION_RUNNING.includes(mig.status)) await new Promise((r) => setTimeout(r, 500)); // a connect in flight
      if (!connected && !MIGRATION_RUNNING.includes((await qmp.execute<MigrateInfo>('query-migrate')).status)) {
        fail('the server stopped before the checkpoint\'s pause');
      }
    }
    if (state !== 'failed' && pauseMode === 'precopy') {
      // A precopy that has not passed QEMU's pause waits for the server (the disk transaction, migrate-continue):
      // give it up (cancelled below; QEMU restarts the guest). One past it completes on its own.
      const st = (await qmp.execute<MigrateInfo>('query-migrate')).status;
      if (['setup', 'active', 'pre-switchover'].includes(st)) fail(`the server stopped during the precopy (${st})`);
    }
    while (now() === 'waiting' || now() === 'streaming') await new Promise((r) => setTimeout(r, 50));
    if (now() === 'received') {
      const mig = await waitMigration(qmp, 120_000);
      if (mig.status !== 'completed')
        throw new Error(`QEMU's migration ended ${mig.status}${mig['error-desc'] ? `: ${mig['error-desc']}` : ''}`);
      if (plan === undefined) throw new Error('the disk backup plan never reached the worker');
      const disk = plan ? await disks.finish(qmp, plan) : null;
      commit(disk, pauseMs);
    }
  } catch (e) {
    fail(e);
  }
  try {
    if (now() === 'failed') {
      await abandonMigration(qmp, { background: job.live && pauseMode !== 'precopy', wasRunning: job.live });
      if (job.disk) await disks.abort(qmp, plan ?? job.disk);
      writeResult(false, 'worker');
    }
    // Whatever happened, a guest that ran before the checkpoint runs after it.
    const st = await qmp.queryStatus();
    if (job.live && !st.running && ['paused', 'postmigrate', 'finish-migrate'].includes(st.status))
      await qmp.execute('cont');
  } catch (e) {
    log(`cleaning up QEMU failed: ${errMsg(e)}`);
  }
  await qmp.close();
  return exit(now() === 'committed' ? 0 : 1);
}

let exiting = false;
async function exit(code: number): Promise<never> {
  if (!exiting) {
    exiting = true;
    clearInterval(heartbeat);
    // QEMU must never be left writing into a closed socket (see migration.ts): drain until it ends the stream, unless
    // it has sent nothing for a minute.
    while (connected && !migClosed && Date.now() - lastBytesAt < 60_000) await new Promise((r) => setTimeout(r, 50));
    migSock?.destroy();
    migServer.close();
    ctlServer.close();
    control?.end();
    writer?.abort();
    store.close();
    rmSync(files.migration, { force: true });
    rmSync(files.control, { force: true });
    log(`exiting (${state}${error ? `: ${error}` : ''})`);
  }
  process.exit(code);
}

process.on('uncaughtException', (e) => {
  log(`uncaught: ${e.stack ?? e.message}`);
  fail(e);
});
process.on('SIGTERM', () => log('SIGTERM ignored: the worker ends with its checkpoint'));
process.on('SIGHUP', () => undefined);
