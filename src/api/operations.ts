// Operations: long-running work (image builds, checkpoints, restores, verifies) to follow and cancel.
import { z } from 'zod';

import { OPERATION_STATUSES } from './states.ts';

export { FINAL_STATUSES, OPERATION_STATUSES, isFinalStatus, type OperationStatus } from './states.ts';
export const operationStatusSchema = z.enum(OPERATION_STATUSES);

export const progressSchema = z.object({ done: z.number(), total: z.number(), stage: z.string() });
export type Progress = z.infer<typeof progressSchema>;

export const operationSchema = z.object({
  id: z.string(),
  kind: z.string(),
  vm: z.string().nullable(),
  user: z.string().nullable(),
  status: operationStatusSchema,
  progress: progressSchema,
  error: z.string().nullable(),
  log: z.array(z.string()),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  /** What a succeeded operation produced (a checkpoint, a restore's target VM, a verify report). */
  result: z.unknown().optional(),
});
export type Operation = z.infer<typeof operationSchema>;

export const operationParams = z.object({ id: z.string() });
export const operationListQuery = z.object({
  vm: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
});
export type OperationListQuery = Partial<z.output<typeof operationListQuery>>;
export const operationWaitQuery = z.object({ timeoutSec: z.coerce.number().min(0).max(300).default(30) });
