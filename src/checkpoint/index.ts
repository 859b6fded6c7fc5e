// Checkpoints: live, incremental checkpoints of running VMs, and restore (README.md in this folder).
export {
  CheckpointService,
  selectRetention,
  type CheckpointSummary,
  type RetentionRules,
  type WorkerOutcome,
} from './service.ts';
export { captureCheckpoint, newCheckpointId } from './capture.ts';
export { restoreCheckpoint, type RestoreMode, type RestoreResult } from './restore.ts';
export { userfaultfdUnusable } from './userfaultfd.ts';
export { DiskCheckpoints } from './disk.ts';
export * from './page-store/index.ts';
export * as stream from './stream/index.ts';
