// What a VM manager is configured with, and the options of its actions.
import type { Accel } from '../config.ts';
import type { Db } from '../db/database.ts';
import type { VmLog } from './hooks.ts';
import type { VmSpec } from './spec.ts';
import type { VmRecord } from './records.ts';

export interface VmManagerOptions {
  db: Db;
  dataDir: string;
  cacheDir: string;
  qemuBinary: string;
  qemuImgBinary: string;
  accel: Accel;
  stopTimeoutSec: number;
  /** Folders admins may name disk images, kernels and initrds in (host-paths.ts). */
  imagesDirs?: string[];
  /** The cap on each running VM's serial.log (serial-log.ts); DEFAULT_SERIAL_LOG_MAX_BYTES when unset. */
  serialLogMaxBytes?: number;
  log?: VmLog;
  /** Quotas: each throws to refuse; called right before a VM's row is inserted and before a start marks it
   * `starting`, with no await between check and write, so parallel requests cannot both pass a check one fits. */
  admit?: { create(ownerId: string, spec: VmSpec): void; start(vm: VmRecord): void };
}

/** Options of `start`. */
export interface StartOptions {
  /** Start QEMU with `-incoming defer`: it runs no guest code until the caller sends `migrate-incoming` (through
   * `withQmp`) and the stream has been loaded. Meanwhile the VM shows as paused, with `reason` (or a default). */
  incoming?: { reason?: string };
  /** The guest RAM block's name (a restore: as its checkpoint names it; ram-backing.ts). */
  ramId?: string;
  /** The caller settles the huge-page pool's lease (`settleRam`) once QEMU holds all its RAM again: a restore, whose
   * postcopy hands the pages back and takes them again as they arrive (huge-pool.ts). QEMU's end settles it too. */
  settleRamLater?: boolean;
  /** Told each step of the start as it completes ('spawned', 'QMP connected', 'QMP negotiated', 'QMP status'), for
   * timings (a restore's timeline). */
  onStage?: (stage: string) => void;
}

/** Options of `withQmp`. */
export interface WithQmpOptions {
  /** What the caller does, for the refusal when the VM is not running or paused ("cannot <action> VM ..."). */
  action?: string;
  /** The session owns the run state: STOP/RESUME events raised meanwhile (its own short pauses, QEMU resuming after
   * a background snapshot or an incoming migration) do not change the VM's state; when it ends the state is set
   * once from QEMU's `query-status` (running, or paused for any stopped run state). */
  ownRunState?: boolean;
}
