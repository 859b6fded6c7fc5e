// Periodic checkpoints: one schedule per VM (`every`: an interval like 30s, 5m, 2h, 1d, or a cron expression), with
// retention rules applied after each scheduled checkpoint. Pruning only ever removes scheduled checkpoints: one
// someone took by hand stays until that person deletes it. Schedules live in SQLite and are re-armed at start.
import { EventEmitter } from 'node:events';
import { Cron } from 'croner';
import type { Db } from '../../db/database.ts';
import { badRequest } from '../../errors.ts';
import type { CheckpointService, RetentionRules } from '../../checkpoint/service.ts';
import type { VmManager } from '../../vm/manager.ts';
import type { VmRecord } from '../../vm/records.ts';
import type { Operations } from '../operations.ts';
import { checkpointProgress } from './progress.ts';

export interface Schedule {
  vmId: string;
  every: string;
  rules: RetentionRules;
  updatedAt: string;
  lastRunAt: string | null;
  lastError: string | null;
  nextRunAt: string | null;
  /** An off-host store of its own for its checkpoints (null: the server's). */
  store: string | null;
}

const INTERVAL_RE = /^(\d+)(s|m|h|d)$/;
const UNIT_S = { s: 1, m: 60, h: 3600, d: 86400 } as const;
/** Scheduled checkpoints more often than this would keep a TCG guest checkpointing all the time. */
const MIN_INTERVAL_S = 2;

/** A croner job for `every`; throws a 400 that says what is accepted. */
function makeJob(every: string, fn: () => void): Cron {
  const m = INTERVAL_RE.exec(every);
  try {
    if (m) {
      const seconds = Number(m[1]) * UNIT_S[m[2] as keyof typeof UNIT_S];
      if (seconds < MIN_INTERVAL_S) throw new Error(`at least ${MIN_INTERVAL_S}s`);
      // Every second, but at most once per `seconds`: croner's way of expressing a plain interval.
      return new Cron('* * * * * *', { interval: seconds, protect: true, catch: true }, fn);
    }
    // A cron expression obeys the same floor: six fields can say "every second".
    const probe = new Cron(every, { paused: true });
    const runs = probe.nextRuns(5);
    probe.stop();
    for (let i = 1; i < runs.length; i++) {
      if (runs[i]!.getTime() - runs[i - 1]!.getTime() < MIN_INTERVAL_S * 1000) throw new Error(`runs at least ${MIN_INTERVAL_S}s apart`);
    }
    return new Cron(every, { protect: true, catch: true }, fn);
  } catch (e) {
    throw badRequest(
      `--every must be an interval (30s, 5m, 2h, 1d) or a cron expression ("0 */6 * * *"): '${every}' is not (${(e as Error).message})`,
    );
  }
}

/** Emits 'changed' (vmId) when a VM's schedule is set, removed, or has run: the event stream tells browsers. */
export class CheckpointSchedules extends EventEmitter<{ changed: [vmId: string] }> {
  private readonly jobs = new Map<string, Cron>();

  constructor(
    private readonly db: Db,
    private readonly vms: VmManager,
    private readonly checkpoints: CheckpointService,
    private readonly ops: Operations,
    /** Throws (quota) when the VM's owner may not take another checkpoint now. */
    private readonly quotas?: { checkCheckpoint(vm: VmRecord): void },
  ) {
    super();
  }

  /** Arms every stored schedule (server start). */
  start(): void {
    for (const s of this.list()) this.arm(s.vmId, s.every);
  }

  stop(): void {
    for (const j of this.jobs.values()) j.stop();
    this.jobs.clear();
  }

  get(vmId: string): Schedule | undefined {
    const r = this.db.prepare('SELECT * FROM checkpoint_schedules WHERE vm_id = ?').get(vmId) as Row | undefined;
    return r && this.fromRow(r);
  }

  list(): Schedule[] {
    return (this.db.prepare('SELECT * FROM checkpoint_schedules').all() as Row[]).map((r) => this.fromRow(r));
  }

  /** `store`: undefined keeps the schedule's store as it is. */
  set(vmId: string, every: string, rules: RetentionRules, store?: string | null): Schedule {
    const job = makeJob(every, () => void this.run(vmId));
    job.stop(); // validated; arm() below starts the real one
    // Without a keep rule, pruning after each run would delete every scheduled checkpoint, the new one included.
    if (!Object.values(rules).some((n) => typeof n === 'number' && n > 0)) {
      throw badRequest(
        'a schedule needs at least one keep rule of 1 or more (--keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly): without one, each run would prune every scheduled checkpoint',
      );
    }
    this.db
      .prepare(
        'INSERT INTO checkpoint_schedules (vm_id, every, rules, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(vm_id) DO UPDATE SET every = excluded.every, rules = excluded.rules, updated_at = excluded.updated_at',
      )
      .run(vmId, every, JSON.stringify(rules), new Date().toISOString());
    if (store !== undefined) this.db.prepare('UPDATE checkpoint_schedules SET store = ? WHERE vm_id = ?').run(store, vmId);
    this.arm(vmId, every);
    this.emit('changed', vmId);
    return this.get(vmId)!;
  }

  remove(vmId: string): void {
    this.jobs.get(vmId)?.stop();
    this.jobs.delete(vmId);
    const removed = this.db.prepare('DELETE FROM checkpoint_schedules WHERE vm_id = ?').run(vmId).changes > 0;
    if (removed) this.emit('changed', vmId);
  }

  private arm(vmId: string, every: string): void {
    this.jobs.get(vmId)?.stop();
    this.jobs.set(vmId, makeJob(every, () => void this.run(vmId)));
  }

  /** One scheduled run: a checkpoint (an operation, like a manual one), then pruning by the schedule's rules.
   * A VM that is not running is skipped (and says so in the schedule's last error). */
  private async run(vmId: string): Promise<void> {
    const s = this.get(vmId);
    const vm = this.vms.records.get(vmId);
    if (!s || !vm) return this.remove(vmId);
    const note = (err: string | null) => {
      this.db
        .prepare('UPDATE checkpoint_schedules SET last_run_at = ?, last_error = ? WHERE vm_id = ?')
        .run(new Date().toISOString(), err, vmId);
      this.emit('changed', vmId);
    };
    if (vm.state !== 'running' && vm.state !== 'paused') return void note(`skipped: the VM was ${vm.state}`);
    const op = this.ops.start('checkpoint.create', { vmId, userId: null }, async (ctx) => {
      // Over the checkpoint quota: pruning by the schedule's rules first may make room; if not, this run fails
      // with the quota's message (in the operation and the schedule's last error).
      try {
        this.quotas?.checkCheckpoint(vm);
      } catch {
        const early = await this.checkpoints.prune(vmId, s.rules);
        if (early.delete.length) ctx.log(`over the checkpoint quota: pruned ${early.delete.length} first`);
        this.quotas?.checkCheckpoint(vm);
      }
      const m = await this.checkpoints.create(vmId, {
        kind: 'scheduled', progress: checkpointProgress(ctx), ...(s.store ? { uploadTo: s.store } : {}),
      });
      const pruned = await this.checkpoints.prune(vmId, s.rules);
      ctx.log(`checkpoint ${m.id}; pruned ${pruned.delete.length}`);
      return { id: m.id, pruned: pruned.delete };
    });
    const done = await this.ops.wait(op.id, 60 * 60 * 1000);
    note(done.status === 'succeeded' ? null : done.error);
  }

  private fromRow(r: Row): Schedule {
    return {
      vmId: r.vm_id,
      every: r.every,
      rules: JSON.parse(r.rules) as RetentionRules,
      updatedAt: r.updated_at,
      lastRunAt: r.last_run_at,
      lastError: r.last_error,
      nextRunAt: this.jobs.get(r.vm_id)?.nextRun()?.toISOString() ?? null,
      store: r.store ?? null,
    };
  }
}

interface Row {
  vm_id: string;
  every: string;
  rules: string;
  updated_at: string;
  last_run_at: string | null;
  last_error: string | null;
  store: string | null;
}
