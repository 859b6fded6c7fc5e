// QEMU migration helpers shared by the server's side of a capture, the capture worker and restore.
//
// QEMU 7.2 never lifts the write protection of guest RAM when a background snapshot is cancelled or fails: only a
// snapshot that completes stops write tracking (fixed upstream after 7.2: "migration: stop tracking ram writes when
// cancelling background migration"). A guest whose snapshot was cancelled freezes at its next write to a page not
// sent yet. So a background snapshot, once started, is never cancelled: to give a checkpoint up, its receiver drains
// the stream to the end and drops it (worker/main.ts), and the checkpoint is discarded. Only a precopy migration
// (the checkpoint of a VM its user paused) is cancelled.
import type { QmpClient, QmpEvent } from '../vm/qmp/index.ts';

export interface MigrateInfo { status: string; 'error-desc'?: string; downtime?: number; ram?: { transferred: number } }

/** `query-migrate` statuses of a migration that has not ended. */
export const MIGRATION_RUNNING = [
  'setup',
  'active',
  'pre-switchover',
  'device',
  'cancelling',
  'wait-unplug',
  'postcopy-active',
];

/** Polls `query-migrate` until the migration has ended (the stream ending means it is about to). Throws if it sends
 * nothing for `stallMs`. */
export async function waitMigration(qmp: QmpClient, stallMs = 60_000): Promise<MigrateInfo> {
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const info = await qmp.execute<MigrateInfo>('query-migrate');
    if (!MIGRATION_RUNNING.includes(info.status)) return info;
    const sent = info.ram?.transferred ?? 0;
    if (sent !== last) {
      last = sent;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > stallMs) {
      throw new Error(`migration still ${info.status}, nothing sent for ${Math.round(stallMs / 1000)} s`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Ends a checkpoint's migration that will not be used, and lets a guest that was running before the checkpoint run
 * again. `background`: it may be a background snapshot, whose receiver drains it: wait for it to end on its own (see
 * above). A precopy (the capability is off) is cancelled; QEMU restarts a guest it stopped.
 */
export async function abandonMigration(qmp: QmpClient, o: { background: boolean; wasRunning: boolean }): Promise<void> {
  const mig = await qmp.execute<MigrateInfo>('query-migrate').catch(() => undefined);
  if (mig && MIGRATION_RUNNING.includes(mig.status)) {
    // Whoever asks may not know which recipe ran (a worker that died): a migration without background-snapshot is a
    // precopy, which is cancelled (one waiting in pre-switchover would never end on its own).
    const caps = await qmp
      .execute<{ capability: string; state: boolean }[]>('query-migrate-capabilities')
      .catch(() => undefined);
    const snapshot = caps?.find((c) => c.capability === 'background-snapshot')?.state ?? true;
    if (!o.background || !snapshot) await qmp.execute('migrate_cancel').catch(() => undefined);
    await waitMigration(qmp, 120_000).catch(() => undefined);
  }
  if (!o.wasRunning) return;
  const st = await qmp.queryStatus();
  if (!st.running && ['paused', 'postmigrate', 'finish-migrate'].includes(st.status)) await qmp.execute('cont');
}

const eventMs = (e: QmpEvent) => e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000;

/** STOP → RESUME from QEMU's event timestamps (ms); null if they do not come within 10 s. */
export async function pauseFromEvents(events: QmpEvent[]): Promise<number | null> {
  const end = Date.now() + 10_000;
  for (;;) {
    const stop = events.find((e) => e.event === 'STOP');
    const resume = events.find((e) => e.event === 'RESUME');
    if (stop && resume) return Math.round((eventMs(resume) - eventMs(stop)) * 100) / 100;
    if (Date.now() > end) return null;
    await new Promise((r) => setTimeout(r, 2));
  }
}
