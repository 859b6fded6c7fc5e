// Signing in and out, and changing one's own password.
import { z } from 'zod';
import { DEFAULT_TOKEN_EXPIRY, tokenExpirySchema } from './tokens.ts';
import { passwordSchema, userSchema } from './users.ts';

/** POST /api/auth/login: sets the session cookie; with tokenName, also issues an API token (shown once). */
export const loginSchema = z.object({
  username: z.string().min(1).max(200),
  password: z.string().min(1).max(1024),
  tokenName: z.string().min(1).max(100).optional(),
  tokenExpires: tokenExpirySchema
    .optional()
    .describe(`lifetime of the API token: 30s, 12h, 90d, ... or "never" (default ${DEFAULT_TOKEN_EXPIRY})`),
});
export type Login = z.input<typeof loginSchema>;
export const loginResultSchema = z.object({ user: userSchema, token: z.string().optional() });
export type LoginResult = z.infer<typeof loginResultSchema>;

/** POST /api/me/password. */
export const passwordChangeSchema = z.object({
  currentPassword: z.string().min(1).max(1024),
  newPassword: passwordSchema,
});
export type PasswordChange = z.input<typeof passwordChangeSchema>;
