// How a running VM's checkpoint makes its pause: two recipes, chosen per checkpoint (README.md, "The pause").
//
// background  stop; transaction [disk]; migrate (capability background-snapshot). QEMU saves the devices and
//             write-protects all guest RAM inside the pause, then restarts the guest and streams RAM as it was.
//             The write protection walks every page table entry (524,288 at 2 GiB of ordinary RAM): tens of ms;
//             1,024 entries with 2 MiB huge pages: a few ms.
// precopy     migrate (capabilities pause-before-switchover, auto-converge) while the guest runs: RAM streams,
//             pages the guest dirties again are sent again (the receiver keeps each page's last version), QEMU
//             throttles a guest that dirties faster than the stream drains. When little is left QEMU stops the guest
//             and waits in `pre-switchover`: the disk transaction goes in there, then migrate-continue; QEMU sends the
//             last dirty pages and the devices and leaves the guest `postmigrate`; `cont` at once. No per-page work
//             in the pause, only the last dirty pages.
// QEMU 7.2 inactivates the block devices when a precopy completes, which fails (the migration with it) while the
// checkpoint's backup job still runs: the precopy pause waits for the job to conclude before migrate-continue, so
// it is chosen only when the backup has little to copy (an incremental one below PRECOPY_DISK_LIMIT).
//
// Precopy needs KVM. Under TCG QEMU 7.2 loses guest writes during a precopy: its dirty-bitmap sync clears the
// migration bits of whole 64-page words without re-arming the vCPUs' TLB "not dirty" traps, so a guest that keeps
// writing to a page through a TLB entry it already holds is never seen dirtying it again, and the page's stale
// version is what the stream carries (fixed upstream in 9.0: "physmem: Fix migration dirty bitmap coherency with
// TCG memory access", 03bfc2188f). Measured here (bench/precopy-oracle.ts): with guest/memcheck rewriting 24 MiB,
// QEMU's own loader fed the precopy stream differs from the source's RAM at the end of the migration in 1,600–3,600
// pages; a restored guest hangs. KVM's dirty log does not have this flaw; background snapshots (userfaultfd write
// protection) are exact under both.
import type { QmpClient, QmpEvent } from '../vm/qmp/index.ts';

export type PauseMode = 'background' | 'precopy';
export type PauseChoice = PauseMode | 'auto';

/** A precopy pause copies the disk backup inside it: above this, the background recipe is used. */
export const PRECOPY_DISK_LIMIT = 8 << 20;
/** Migration parameters of a precopy capture: stop when what is left fits in 5 ms at the measured bandwidth, never
 * rate-limit the stream (it goes to a local socket). */
export const PRECOPY_PARAMETERS = { 'downtime-limit': 5, 'max-bandwidth': 64 * 2 ** 30 } as const;
/** With no pre-switchover within this long, a precopy checkpoint is given up (cancelled; the guest runs on). */
const CONVERGE_MS = 10 * 60_000;

/** The server-wide default recipe, ORIEL_CHECKPOINT_PAUSE: `auto` (unset: the default) or `background`. */
export function pauseModeFromEnv(env: NodeJS.ProcessEnv = process.env): PauseChoice {
  const v = env.ORIEL_CHECKPOINT_PAUSE;
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'background') return 'background';
  throw new Error(`ORIEL_CHECKPOINT_PAUSE is '${v}': it must be 'auto' (the default) or 'background'`);
}

/**
 * The recipe for one checkpoint of a running VM: `forced` wins (a forced precopy under TCG is refused: see above);
 * then the server's default (pauseModeFromEnv). `auto` takes background when the guest runs under TCG (precopy
 * loses its writes), when the disk backup is too big to copy inside a precopy pause, or when the RAM is in huge
 * pages (their write protection is cheap: 4–6 ms at 2 GiB); precopy otherwise (README.md has the measurements).
 */
export function choosePauseMode(o: {
  forced?: PauseChoice;
  hugepages: boolean;
  diskCopyBytes: number | null;
  /** What the guest runs on (QMP query-kvm). */
  accel: 'kvm' | 'tcg';
  env?: NodeJS.ProcessEnv;
  /** Measurements only (bench/checkpoint.ts --pauses): a forced precopy runs under TCG too, its checkpoint possibly
   * not the guest's instant. */
  inexactTcgPrecopy?: boolean;
}): PauseMode {
  const choice = o.forced ?? pauseModeFromEnv(o.env);
  if (choice === 'precopy' && o.accel !== 'kvm' && !(o.forced === 'precopy' && o.inexactTcgPrecopy)) {
    throw new Error(
      'a precopy checkpoint needs KVM: under TCG QEMU 7.2 loses guest writes during a precopy (use the background recipe)',
    );
  }
  if (choice !== 'auto') return choice;
  if (o.accel !== 'kvm') return 'background';
  if (o.diskCopyBytes !== null && o.diskCopyBytes > PRECOPY_DISK_LIMIT) return 'background';
  return o.hugepages ? 'background' : 'precopy';
}

/**
 * Runs a precopy migration to `uri` with the pause described above, on `qmp` (the migration capabilities and
 * parameters must be set). Resolves once the guest runs again (`cont` sent and answered); throws if the migration
 * fails, is cancelled or does not converge (the caller abandons it: migrate_cancel, cont). `disk`: the
 * transaction's actions and the backup job it starts.
 */
export async function precopyPause(
  qmp: QmpClient,
  uri: string,
  disk?: { actions: object[]; jobId: string },
): Promise<void> {
  const migration = statusWatch(qmp, 'MIGRATION', (d) => d.status as string);
  const jobs = statusWatch(qmp, 'JOB_STATUS_CHANGE', (d) => (d.id === disk?.jobId ? (d.status as string) : undefined));
  try {
    await qmp.execute('migrate', { uri });
    const pre = await migration.until(['pre-switchover', 'failed', 'cancelled', 'completed'], CONVERGE_MS);
    if (pre !== 'pre-switchover') throw new Error(`QEMU's migration ended ${pre} before the pause`);
    // The guest is stopped (STOP event). The disk's instant, then its backup must have concluded before QEMU
    // inactivates the block devices.
    if (disk) {
      await qmp.execute('transaction', { actions: disk.actions });
      const j = await jobs.until(['concluded', 'null'], 120_000);
      if (j !== 'concluded') throw new Error(`the disk backup job ended ${j}`);
    }
    await qmp.execute('migrate-continue', { state: 'pre-switchover' });
    const end = await migration.until(['completed', 'failed', 'cancelled'], 120_000);
    if (end !== 'completed') throw new Error(`QEMU's migration ended ${end} in the pause`);
    // COMPLETED is announced before QEMU sets the run state to postmigrate: a `cont` in between would be undone.
    for (let i = 0; ; i++) {
      const st = await qmp.queryStatus();
      if (st.status === 'postmigrate') break;
      if (st.running || i > 5000) throw new Error(`after the migration QEMU is ${st.status}`);
    }
    await qmp.execute('cont');
  } finally {
    migration.off();
    jobs.off();
  }
}

/** Follows one event's status field; `until` resolves with the first status in `wanted` seen since the watch began
 * (or rejects after `timeoutMs`, or when QMP closes). */
function statusWatch(
  qmp: QmpClient,
  event: string,
  pick: (data: Record<string, unknown>) => string | undefined,
): { until(wanted: string[], timeoutMs: number): Promise<string>; off(): void } {
  const seen: string[] = [];
  let wake: (() => void) | undefined;
  const off = qmp.onEvent((e: QmpEvent) => {
    if (e.event !== event) return;
    const s = pick((e.data ?? {}) as Record<string, unknown>);
    if (s === undefined) return;
    seen.push(s);
    wake?.();
  });
  return {
    off,
    async until(wanted, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = seen.findIndex((s) => wanted.includes(s));
        if (i >= 0) return seen.splice(0, i + 1).at(-1)!;
        if (qmp.isClosed) throw new Error('QEMU\'s QMP connection closed during the checkpoint');
        if (Date.now() > deadline) throw new Error(`no ${event} ${wanted.join('/')} within ${timeoutMs / 1000} s`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 200);
        });
        wake = undefined;
      }
    },
  };
}
