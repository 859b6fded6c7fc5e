// API tokens: their lifetimes, and what lists show of them (the secret is shown once, when created).
import { z } from 'zod';

/** How long a token lives when its creator does not say: long enough for a laptop's CLI, short enough to age out. */
export const DEFAULT_TOKEN_EXPIRY = '90d';
/** The longest lifetime short of "never". */
export const MAX_TOKEN_EXPIRY_MS = 3650 * 86_400_000;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The lifetime in ms of `30d`, `12h`, ...; null for `never` or anything else. */
export function tokenExpiryMs(s: string): number | null {
  const m = /^([0-9]+)([smhd])$/.exec(s);
  return m ? Number(m[1]) * UNIT_MS[m[2]!]! : null;
}

export const tokenExpirySchema = z
  .string()
  .regex(/^(never|[1-9][0-9]{0,6}[smhd])$/, 'a token lifetime is a number with s, m, h or d (30s, 12h, 90d), or "never"')
  .refine(
    (s) => (tokenExpiryMs(s) ?? 0) <= MAX_TOKEN_EXPIRY_MS,
    'a token lifetime is at most 3650 days (or "never")',
  );

export const tokenSchema = z.object({
  id: z.string(),
  name: z.string(),
  user: z.string(),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable(),
  expiresAt: z.string().nullable().describe('null: never expires'),
  expired: z.boolean(),
  current: z.boolean().describe('the token this request was made with'),
});
export type Token = z.infer<typeof tokenSchema>;

export const tokenListQuery = z.object({ all: z.enum(['0', '1', 'true', 'false']).optional() });

/** POST /api/tokens. */
export const tokenCreateSchema = z.object({
  name: z.string().min(1).max(100),
  expires: tokenExpirySchema
    .optional()
    .describe(`lifetime: 30s, 12h, 90d, ... or "never" (default ${DEFAULT_TOKEN_EXPIRY})`),
});
export type TokenCreate = z.input<typeof tokenCreateSchema>;
export const createdTokenSchema = z.object({ token: z.string(), info: tokenSchema });
export type CreatedToken = z.infer<typeof createdTokenSchema>;

export const tokenIdParams = z.object({ id: z.string().max(100) });
