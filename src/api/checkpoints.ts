// Live checkpoints of VMs: what lists and shows give, restore, verify, prune, and the periodic schedule.
import { z } from 'zod';

export const CHECKPOINT_KINDS = ['manual', 'scheduled'] as const;

/** One checkpoint. Written = newBytes (RAM and device state the checkpoint adds over its parent, counted as if no
 * other VM's checkpoints were stored) + diskBytes (the disk image: whole for 'full', changes since the parent for
 * 'incremental'). */
export const checkpointSummarySchema = z.object({
  id: z.string(), vmId: z.string(), vmName: z.string(), createdAt: z.string(), kind: z.enum(CHECKPOINT_KINDS),
  label: z.string().optional(), parent: z.string().nullable(), pauseMs: z.number().nullable(), durationMs: z.number(),
  newBytes: z.number(), diskBytes: z.number(),
});
export type CheckpointSummary = z.infer<typeof checkpointSummarySchema>;
/** The list adds how the disk was included (full image, changes since the parent, or no disk) for the web UI. */
export const checkpointSchema = checkpointSummarySchema.extend({
  diskMode: z.enum(['full', 'incremental']).nullable(),
});
export type Checkpoint = z.infer<typeof checkpointSchema>;
/** GET /api/vms/{vm}/checkpoints/{id}. */
export const checkpointDetailSchema = checkpointSummarySchema.extend({
  wasRunning: z.boolean(),
  qemu: z.object({ version: z.string(), machine: z.string() }),
  disks: z.array(z.object({ node: z.string(), mode: z.string(), bytes: z.number() })),
  ramBlocks: z.array(z.object({ id: z.string(), length: z.number() })),
});
export type CheckpointDetail = z.infer<typeof checkpointDetailSchema>;

export const checkpointParams = z.object({ vm: z.string(), id: z.string() });

/** POST /api/vms/{vm}/checkpoints: an operation whose result is the CheckpointSummary. */
export const checkpointTakeSchema = z.object({ label: z.string().max(200).optional() }).optional();
/**
 * POST …/checkpoints/{id}/restore: in place, or with `as` into a new VM. Lazy by default (the guest runs once its
 * device state is loaded, its RAM follows); `mode: "eager"` (or `eager: true`) loads all RAM first.
 */
export const restoreSchema = z
  .object({ as: z.string().optional(), mode: z.enum(['lazy', 'eager']).optional(), eager: z.boolean().optional() })
  .strict()
  .refine((b) => !(b.eager && b.mode === 'lazy'), { message: '`eager: true` contradicts `mode: "lazy"`' })
  .optional();
export type RestoreRequest = NonNullable<z.input<typeof restoreSchema>>;
/** POST /api/checkpoints/restore-from-store (admins): a checkpoint another server uploaded to object storage, restored
 * on this server as a new VM (named `as`, else as it was): the seed of failover. */
export const restoreFromStoreSchema = z
  .object({
    url: z.string().min(5).max(2000).describe('s3://BUCKET/PREFIX[?endpoint=URL&region=R]; credentials from AWS_* env'),
    vm: z.string().min(1).max(200).describe("the VM's name or id on the server that took the checkpoint"),
    id: z.string().regex(/^[A-Za-z0-9_-]+$/).max(200),
    as: z.string().optional(),
    mode: z.enum(['lazy', 'eager']).optional(),
  })
  .strict();
export type RestoreFromStoreRequest = z.input<typeof restoreFromStoreSchema>;
export const restoreResultSchema = z.object({
  checkpoint: z.string(), vm: z.string(),
  mode: z.enum(['lazy', 'eager']).describe('how RAM was loaded'),
  fallback: z.string().optional().describe('why a lazy restore was done eagerly'),
  runningMs: z.number().nullable().describe('QEMU started → the guest running'),
  restoreMs: z.number().describe('QEMU started → all RAM in place'),
  verifyMs: z.number().describe('checks made before the VM was stopped'),
  streamBytes: z.number(),
  note: z.string().optional().describe('what the user should know: a copy of a networked VM and its cards'),
});
export type RestoreResult = z.infer<typeof restoreResultSchema>;
/** POST …/checkpoints/verify: all the VM's checkpoints, or one. */
export const verifySchema = z.object({ id: z.string().optional() }).optional();
export const verifyResultSchema = z.object({
  ok: z.boolean(),
  checked: z.array(z.string()),
  /** Checkpoint id → the objects it names that are missing or corrupt (hashes), and its disk images that are not
   * sound (`disk FILE: what is wrong`). */
  broken: z.record(z.string(), z.array(z.string())),
  objects: z.number(),
  /** Disk images checked (the checked checkpoints'): qcow2 metadata, backing chain, content digest. */
  diskImages: z.number(),
});
export type VerifyResult = z.infer<typeof verifyResultSchema>;

/** Retention of scheduled checkpoints (Proxmox Backup Server's keep-last/-hourly/-daily/-weekly/-monthly). */
const keep = z.number().int().min(0).max(10_000).optional();
export const retentionSchema = z
  .object({ keepLast: keep, hourly: keep, daily: keep, weekly: keep, monthly: keep })
  .strict();
export type RetentionRules = z.infer<typeof retentionSchema>;

/** POST …/checkpoints/prune. */
export const pruneSchema = z.object({ dryRun: z.boolean().default(false), rules: retentionSchema.optional() });
export type Prune = z.input<typeof pruneSchema>;
export const pruneResultSchema = z.object({
  keep: z.array(z.string()), delete: z.array(z.string()), dryRun: z.boolean(),
});
export type PruneResult = z.infer<typeof pruneResultSchema>;

export const scheduleSchema = z.object({
  vm: z.string(), every: z.string(), rules: retentionSchema, updatedAt: z.string(), lastRunAt: z.string().nullable(),
  lastError: z.string().nullable(), nextRunAt: z.string().nullable(),
  store: z.string().nullable().describe("the off-host store this schedule's checkpoints go to (null: the server's)"),
});
export type CheckpointSchedule = z.infer<typeof scheduleSchema>;
/** PUT /api/vms/{vm}/checkpoint-schedule: every = an interval (30s, 5m, 2h, 1d) or a cron expression. */
export const scheduleSetSchema = retentionSchema.extend({
  every: z.string().min(2).max(100),
  store: z.string().max(2000).nullable().optional()
    .describe('admins: an s3://BUCKET/PREFIX store for these checkpoints; null: the server\'s; absent: unchanged'),
});
export type ScheduleSet = z.input<typeof scheduleSetSchema>;
