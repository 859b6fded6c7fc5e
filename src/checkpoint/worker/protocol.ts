// What the server and a capture worker share: the worker's files in the VM's folder, the job, the result, and the
// messages on the control socket (one JSON object a line).
//
//   vms/<id>/ckpt-worker.job.json     the job, written by the server before it spawns the worker
//   vms/<id>/ckpt-worker.pid          the worker's pid (written by both, the worker first thing)
//   vms/<id>/ckpt-worker.sock         control socket: the worker listens, the server connects
//   vms/<id>/ckpt.sock                the migration socket: the worker listens, QEMU connects and streams
//   vms/<id>/ckpt-worker.log          the worker's stdout and stderr
//   vms/<id>/ckpt-worker.status       its state and stream bytes, rewritten on change (its mtime = last progress)
//   vms/<id>/ckpt-worker.result.json  the outcome, written (atomically) by the worker before it exits
// The job and result files stay until a server has taken the outcome (the running one, or the next after a crash).
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ourPidFrom } from '../../host/process.ts';
import type { DiskJob } from '../disk.ts';
import type { PauseMode } from '../pause-mode.ts';
import type { FaultInjection, Manifest, ManifestMeta, DiskRecord } from '../page-store/index.ts';

export interface WorkerFiles {
  job: string;
  pid: string;
  control: string;
  migration: string;
  log: string;
  result: string;
  status: string;
}

export function workerFiles(vmDir: string): WorkerFiles {
  return {
    job: join(vmDir, 'ckpt-worker.job.json'),
    pid: join(vmDir, 'ckpt-worker.pid'),
    control: join(vmDir, 'ckpt-worker.sock'),
    migration: join(vmDir, 'ckpt.sock'),
    log: join(vmDir, 'ckpt-worker.log'),
    result: join(vmDir, 'ckpt-worker.result.json'),
    status: join(vmDir, 'ckpt-worker.status'),
  };
}

export interface WorkerJob {
  format: 1;
  checkpointId: string;
  /** The server operation this capture runs for (matched to it again after a server restart), if any. */
  operationId: string | null;
  storeRoot: string;
  vmDir: string;
  qmpSocket: string;
  qemuPid: number;
  serverPid: number;
  /** The guest was running: the pause stopped it, and it must run again whatever happens. */
  live: boolean;
  /** Epoch ms the checkpoint was asked for (the manifest's duration counts from here). */
  requestedAt: number;
  /** The manifest, but for what the stream, the disk backup and the pause tell. */
  meta: Omit<ManifestMeta, 'disks' | 'stats' | 'createdAt'>;
  /** The disk backup's names (fixed by the checkpoint id), or null for a VM without a disk. */
  disk: Pick<DiskJob, 'node' | 'jobId' | 'file'> | null;
  faults?: FaultInjection;
}

export interface WorkerResult {
  checkpointId: string;
  operationId: string | null;
  ok: boolean;
  error?: string;
  /** Who took the checkpoint to its end: the server that started it, or the worker alone after the server died. */
  finishedBy: 'server' | 'worker';
  finishedAt: string;
}

/** Worker → server. */
export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'progress'; bytes: number; connected: boolean }
  | { type: 'received'; streamBytes: number }
  | { type: 'committed'; manifest: Manifest }
  | { type: 'failed'; error: string };

/** Server → worker. */
export type ServerMessage =
  | { type: 'plan'; disk: DiskJob | null; pauseMode?: PauseMode | null }
  | { type: 'paused'; pauseMs: number | null }
  | { type: 'commit'; disk: DiskRecord | null; pauseMs: number | null }
  | { type: 'abort'; reason: string }
  | { type: 'done' };

/** Marker of a worker's command line: the job file's path (unique per VM, so a recycled pid is never taken for it). */
export const WORKER_ENTRY = join(import.meta.dirname, import.meta.url.endsWith('.js') ? 'main.js' : 'main.ts');
/** Compiled (dist/node, which bin/oriel.js runs when current) the worker is plain JavaScript: no tsx to load. */
export const WORKER_COMPILED = WORKER_ENTRY.endsWith('.js');

/** The pid of this VM's capture worker if one runs. */
export function liveWorkerPid(files: WorkerFiles): number | undefined {
  return ourPidFrom(files.pid, files.job);
}

export function readJob(files: WorkerFiles): WorkerJob | undefined {
  return readJson<WorkerJob>(files.job);
}

export function readResult(files: WorkerFiles): WorkerResult | undefined {
  return readJson<WorkerResult>(files.result);
}

/** Forgets a finished worker: its job, result, pid and sockets (its log stays, appended to by the next one). */
export function clearWorkerFiles(files: WorkerFiles): void {
  for (const f of [files.result, files.job, files.pid, files.control, files.migration, files.status])
    rmSync(f, { force: true });
}

function readJson<T>(path: string): T | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Sends one message (a JSON line). */
export function sendLine(
  sock: { write(s: string): unknown; destroyed?: boolean },
  msg: WorkerMessage | ServerMessage,
): void {
  if (!sock.destroyed) sock.write(`${JSON.stringify(msg)}\n`);
}

/** Calls `on` with each JSON line read from the socket. */
export function readLines<T>(
  sock: NodeJS.ReadableStream & { setEncoding(e: BufferEncoding): unknown },
  on: (msg: T) => void,
): void {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) on(JSON.parse(line) as T);
    }
  });
}
