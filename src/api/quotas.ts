// Quotas: each user's limits (null: unlimited) and what they use now.
import { z } from 'zod';
import { roleSchema } from './users.ts';

export const QUOTA_RESOURCES = ['vms', 'memoryMiB', 'cpus', 'diskBytes', 'checkpointBytes'] as const;
export type QuotaResource = (typeof QUOTA_RESOURCES)[number];

const limit = (what: string) => z.number().int().nullable().describe(`${what}; null: unlimited`);
export const quotaLimitsSchema = z.object({
  vms: limit('VMs the user may own'),
  memoryMiB: limit('MiB of memory of the running (and paused) VMs'),
  cpus: limit('vCPUs of the running (and paused) VMs'),
  diskBytes: limit("bytes of the provisioned (virtual) size of the user's VM disks"),
  checkpointBytes: limit("bytes the user's checkpoints hold"),
});
export type QuotaLimits = z.infer<typeof quotaLimitsSchema>;
export const quotaUsageSchema = z.object({
  vms: z.number(), memoryMiB: z.number(), cpus: z.number(), diskBytes: z.number(), checkpointBytes: z.number(),
});
export type QuotaUsage = z.infer<typeof quotaUsageSchema>;
export const quotaSchema = z.object({
  user: z.string(),
  role: roleSchema,
  custom: z.boolean().describe('the user has limits of their own (false: the defaults apply)'),
  limits: quotaLimitsSchema,
  usage: quotaUsageSchema,
});
export type Quota = z.infer<typeof quotaSchema>;

const settable = (what: string, max: number) =>
  z.number().int().min(0).max(max).nullable().optional().describe(`${what}; null: unlimited; omitted: unchanged`);
/** PUT /api/users/{name}/quota (admin): given fields replace the current ones. */
export const quotaSetSchema = z
  .object({
    vms: settable('VMs', 100_000),
    memoryMiB: settable('MiB of running memory', 2 ** 31),
    cpus: settable('running vCPUs', 1_000_000),
    diskBytes: settable('bytes of provisioned disk', Number.MAX_SAFE_INTEGER),
    checkpointBytes: settable('bytes of checkpoints', Number.MAX_SAFE_INTEGER),
  })
  .strict();
export type QuotaSet = z.input<typeof quotaSetSchema>;

export const quotaUserParams = z.object({ name: z.string().max(64) });
