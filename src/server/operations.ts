// Operations: one object for every long action (image builds now; checkpoints and restores later).
// An operation is persisted as it changes, so the list survives restarts; one that was running when the server
// stopped is marked failed on the next start, never left "running" forever.
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { Db } from '../db/database.ts';
import { conflict, notFound } from '../errors.ts';
import { isFinalStatus, type OperationStatus } from '../api/states.ts';

export type { OperationStatus };
export interface Progress {
  done: number;
  total: number;
  stage: string;
}
export interface Operation {
  id: string;
  kind: string;
  vmId: string | null;
  userId: string | null;
  status: OperationStatus;
  progress: Progress;
  error: string | null;
  log: string[];
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Result of a succeeded operation, small JSON (e.g. the built image's name). */
  result?: unknown;
}

export interface OperationContext {
  id: string;
  signal: AbortSignal;
  progress(done: number, total: number, stage: string): void;
  log(line: string): void;
}

const LOG_TAIL = 200;

interface Row {
  id: string; kind: string; vm_id: string | null; user_id: string | null; status: OperationStatus; progress: string;
  error: string | null; log: string; created_at: string; started_at: string | null; finished_at: string | null;
}
const fromRow = (r: Row): Operation => {
  const extra = JSON.parse(r.progress) as Progress & { result?: unknown };
  const { result, ...progress } = extra;
  return {
    id: r.id, kind: r.kind, vmId: r.vm_id, userId: r.user_id, status: r.status, progress, error: r.error,
    log: JSON.parse(r.log) as string[], createdAt: r.created_at, startedAt: r.started_at, finishedAt: r.finished_at,
    ...(result !== undefined ? { result } : {}),
  };
};

export class Operations extends EventEmitter {
  private readonly controllers = new Map<string, AbortController>();
  /** Operations of this process still running (drain). */
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly db: Db) {
    super();
    this.setMaxListeners(0);
  }

  /** Operations left running by a previous server process can never finish, unless `adopt` takes one over (a
   * checkpoint whose capture worker outlived the server): it then ends as the promise `adopt` returns does. The
   * others are marked failed. */
  init(adopt?: (op: Operation) => Promise<unknown> | undefined): void {
    const left = this.db.prepare("SELECT * FROM operations WHERE status IN ('pending', 'running')").all() as Row[];
    for (const op of left.map(fromRow)) {
      const carried = adopt?.(op);
      if (carried) {
        const log = [...op.log, 'the server restarted; the operation continues'];
        this.db.prepare('UPDATE operations SET log = ? WHERE id = ?').run(JSON.stringify(log), op.id);
        const settled = this.settle(op.id, carried, () => false, op.progress).catch(() => undefined);
        this.running.add(settled);
        void settled.finally(() => this.running.delete(settled));
        continue;
      }
      this.db
        .prepare(
          "UPDATE operations SET status = 'failed', error = 'the server stopped while this operation ran', finished_at = ? WHERE id = ?",
        )
        .run(new Date().toISOString(), op.id);
    }
  }

  /** Records how an operation ended once `p` settles. */
  private async settle(
    id: string,
    p: Promise<unknown>,
    aborted: () => boolean,
    progress: (() => Progress) | Progress,
  ): Promise<void> {
    let status: OperationStatus = 'succeeded', error: string | null = null, result: unknown;
    try {
      result = await p;
    } catch (e) {
      status = aborted() ? 'cancelled' : 'failed';
      error = aborted() ? 'cancelled on request' : (e as Error).message;
    }
    // The server closed its database first (an operation that outlived drain): the next server marks it failed, or
    // takes a checkpoint's worker over (init).
    if (!this.db.open) return;
    const prog = typeof progress === 'function' ? progress() : progress;
    const stored = result === undefined ? prog : { ...prog, result };
    this.db
      .prepare('UPDATE operations SET status = ?, error = ?, progress = ?, finished_at = ? WHERE id = ?')
      .run(status, error, JSON.stringify(stored), new Date().toISOString(), id);
    this.emit('changed', this.get(id));
  }

  get(id: string): Operation {
    const r = this.db.prepare('SELECT * FROM operations WHERE id = ?').get(id) as Row | undefined;
    if (!r) throw notFound(`no operation with id '${id}'`);
    return fromRow(r);
  }

  list(filter: { vmId?: string; userId?: string; limit?: number } = {}): Operation[] {
    const where: string[] = [], args: unknown[] = [];
    if (filter.vmId) { where.push('vm_id = ?'); args.push(filter.vmId); }
    if (filter.userId) { where.push('user_id = ?'); args.push(filter.userId); }
    const sql = `SELECT * FROM operations ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, filter.limit ?? 100) as Row[]).map(fromRow);
  }

  /** Starts `fn` as an operation and returns it at once (status running). */
  start(
    kind: string,
    who: { vmId?: string | null; userId?: string | null },
    fn: (ctx: OperationContext) => Promise<unknown>,
  ): Operation {
    const id = randomUUID();
    const t = new Date().toISOString();
    this.db
      .prepare(
        "INSERT INTO operations (id, kind, vm_id, user_id, status, progress, error, log, created_at, started_at) VALUES (?, ?, ?, ?, 'running', ?, NULL, '[]', ?, ?)",
      )
      .run(
        id,
        kind,
        who.vmId ?? null,
        who.userId ?? null,
        JSON.stringify({ done: 0, total: 0, stage: 'starting' }),
        t,
        t,
      );
    const ac = new AbortController();
    this.controllers.set(id, ac);
    const op = this.get(id);
    this.emit('changed', op);
    const logLines: string[] = [];
    let progress: Progress = op.progress;
    let lastWrite = 0;
    const persist = (force = false) => {
      if (!this.db.open) return;
      const now = Date.now();
      if (!force && now - lastWrite < 200) return;
      lastWrite = now;
      this.db
        .prepare('UPDATE operations SET progress = ?, log = ? WHERE id = ?')
        .run(JSON.stringify(progress), JSON.stringify(logLines), id);
      this.emit('changed', this.get(id));
    };
    const ctx: OperationContext = {
      id,
      signal: ac.signal,
      progress: (done, total, stage) => {
        progress = { done, total, stage };
        persist();
      },
      log: (line) => {
        logLines.push(line);
        if (logLines.length > LOG_TAIL) logLines.splice(0, logLines.length - LOG_TAIL);
        persist();
      },
    };
    const run = (async () => fn(ctx))();
    const settled = this.settle(id, run.finally(() => {
      this.controllers.delete(id);
      persist(true);
    }), () => ac.signal.aborted, () => progress).catch(() => undefined);
    this.running.add(settled);
    void settled.finally(() => this.running.delete(settled));
    return op;
  }

  /** Waits (at most `maxMs`) for the operations still running, before the server closes its database. */
  async drain(maxMs: number): Promise<void> {
    if (this.running.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.running), new Promise((r) => { timer = setTimeout(r, maxMs); })]);
    clearTimeout(timer);
  }

  cancel(id: string): Operation {
    const op = this.get(id);
    const ac = this.controllers.get(id);
    if (!ac || isFinalStatus(op.status)) throw conflict(`operation ${id} has already ${op.status}`);
    ac.abort();
    return this.get(id);
  }

  /** Resolves with the operation once it has finished, or as it is after `timeoutMs`. */
  wait(id: string, timeoutMs: number): Promise<Operation> {
    const op = this.get(id);
    if (isFinalStatus(op.status)) return Promise.resolve(op);
    return new Promise((resolve) => {
      const onChange = (o: Operation) => {
        if (o.id === id && isFinalStatus(o.status)) done(o);
      };
      // Never what keeps a process alive: a waiter gone with its server (a scheduled run's, at shutdown) must not hold
      // the process for the rest of its hour.
      const timer = setTimeout(() => done(this.db.open ? this.get(id) : op), timeoutMs);
      timer.unref();
      const done = (o: Operation) => {
        clearTimeout(timer);
        this.off('changed', onChange);
        resolve(o);
      };
      this.on('changed', onChange);
    });
  }
}

export const isFinal = isFinalStatus;
