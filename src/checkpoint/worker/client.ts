// The server's side of a capture worker: spawn it (detached, in its own session, its output to a log in the VM's
// folder, so it outlives the server), connect to its control socket, exchange messages, and, after a server
// restart, wait for a worker the previous server left.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tail } from '../../vm/serial-log.ts';
import type { DiskRecord, Manifest } from '../page-store/index.ts';
import type { DiskJob } from '../disk.ts';
import type { PauseMode } from '../pause-mode.ts';
import { writeFileAtomic } from '../page-store/index.ts';
import {
  liveWorkerPid,
  readLines,
  sendLine,
  WORKER_COMPILED,
  WORKER_ENTRY,
  type ServerMessage,
  type WorkerFiles,
  type WorkerJob,
  type WorkerMessage,
} from './protocol.ts';

/** A worker that says nothing for this long (it sends progress every second) is taken for dead. */
const SILENCE_MS = 30_000;
/** Starting Node and tsx on a busy machine. */
const START_TIMEOUT_MS = 60_000;

export class WorkerClient {
  private sock?: Socket;
  private waiters: { type: WorkerMessage['type']; resolve(m: WorkerMessage): void; reject(e: Error): void }[] = [];
  private readonly inbox: WorkerMessage[] = [];
  private failure?: Error;
  private lastHeard = Date.now();
  private watchdog?: NodeJS.Timeout;
  private closed!: Promise<void>;
  /** Bytes of the stream received so far (from the worker's progress messages). */
  bytes = 0;

  private constructor(readonly files: WorkerFiles, readonly pid: number) {}

  /** Writes the job, spawns the worker and connects to it; resolves once it listens on the migration socket. */
  static async launch(files: WorkerFiles, job: WorkerJob): Promise<WorkerClient> {
    writeFileAtomic(files.job, JSON.stringify(job));
    const logFd = openSync(files.log, 'a', 0o600);
    let pid: number;
    let exited: string | undefined;
    try {
      writeSync(
        logFd,
        `--- ${new Date().toISOString()} starting the capture worker for checkpoint ${job.checkpointId}\n`,
      );
      const loader = WORKER_COMPILED ? [] : ['--import', import.meta.resolve('tsx')];
      const child = spawn(process.execPath, [...loader, WORKER_ENTRY, files.job], {
        detached: true, stdio: ['ignore', logFd, logFd], cwd: job.vmDir,
      });
      child.once('error', (e) => (exited = e.message));
      child.once('exit', (code, signal) => (exited = signal ?? `code ${code}`));
      child.unref();
      if (!child.pid) throw new Error('cannot start the capture worker');
      pid = child.pid;
      writeFileSync(files.pid, `${pid}\n`, { mode: 0o600 });
    } finally {
      closeSync(logFd);
    }
    const w = new WorkerClient(files, pid);
    try {
      const end = Date.now() + START_TIMEOUT_MS;
      for (;;) {
        if (exited) throw new Error(`the capture worker exited at once (${exited}): ${tail(files.log, 5)}`);
        try {
          w.sock = await connect(files.control);
          break;
        } catch (e) {
          if (Date.now() > end)
            throw new Error(
              `the capture worker did not start within ${START_TIMEOUT_MS / 1000} s: ${(e as Error).message}`,
            );
          await new Promise((r) => setTimeout(r, 25));
        }
      }
      w.wire();
      await w.next('ready');
    } catch (e) {
      // No pause was made: nothing in QEMU depends on this worker. It is ours, end it.
      w.sock?.destroy();
      if (!exited) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      throw e;
    }
    return w;
  }

  private wire(): void {
    const sock = this.sock!;
    readLines<WorkerMessage>(sock, (m) => {
      this.lastHeard = Date.now();
      if (m.type === 'progress') this.bytes = m.bytes;
      if (m.type === 'failed') return this.fail(new Error(m.error));
      if (m.type === 'progress') return;
      const i = this.waiters.findIndex((w) => w.type === m.type);
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
      else this.inbox.push(m); // arrived before anyone asked
    });
    sock.on('error', () => undefined);
    this.closed = new Promise((r) => sock.once('close', () => {
      this.fail(new Error(`the capture worker (pid ${this.pid}) closed its connection: ${tail(this.files.log, 3)}`));
      r();
    }));
    this.watchdog = setInterval(() => {
      if (Date.now() - this.lastHeard > SILENCE_MS)
        this.fail(new Error(`the capture worker (pid ${this.pid}) has not answered for ${SILENCE_MS / 1000} s`));
    }, 1000);
    this.watchdog.unref();
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
  }

  /** The next message of that type; rejects when the worker reports a failure, goes silent or goes away. */
  next<T extends WorkerMessage['type']>(type: T): Promise<Extract<WorkerMessage, { type: T }>> {
    const i = this.inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0] as Extract<WorkerMessage, { type: T }>);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) =>
      this.waiters.push({ type, resolve: resolve as (m: WorkerMessage) => void, reject }),
    );
  }

  send(msg: ServerMessage): void {
    if (this.sock) sendLine(this.sock, msg);
  }

  /** The disk backup and the pause recipe (null: a VM its user paused). */
  plan(disk: DiskJob | null, pauseMode: PauseMode | null): void { this.send({ type: 'plan', disk, pauseMode }); }
  paused(pauseMs: number | null): void { this.send({ type: 'paused', pauseMs }); }

  async commit(disk: DiskRecord | null, pauseMs: number | null): Promise<Manifest> {
    const wait = this.next('committed');
    this.send({ type: 'commit', disk, pauseMs });
    return (await wait).manifest;
  }

  /** Tells the worker it may exit (the server has finished with QEMU) and waits until it has. */
  async done(): Promise<void> {
    this.send({ type: 'done' });
    clearInterval(this.watchdog);
    // unref: a worker that has closed must not keep the process alive for the rest of the 35 s.
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, 35_000).unref())]);
    await waitWorkerExit(this.files, 10_000);
  }

  /** Makes the worker give the checkpoint up (it keeps draining the stream until QEMU ends it). */
  abort(reason: string): void {
    this.send({ type: 'abort', reason });
  }
}

/** Waits until this VM has no live capture worker; false if one still runs after `timeoutMs`, or, with
 * `stallMs`, once it has shown no progress (its status file unchanged) for that long. */
export async function waitWorkerExit(files: WorkerFiles, timeoutMs: number, stallMs?: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (liveWorkerPid(files) !== undefined) {
    if (Date.now() > end) return false;
    if (stallMs !== undefined) {
      const changed = existsSync(files.status) ? statSync(files.status).mtimeMs : statSync(files.job).mtimeMs;
      if (Date.now() - changed > stallMs) return false;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

function connect(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    s.once('error', reject);
    s.once('connect', () => { s.off('error', reject); resolve(s); });
  });
}
