// Accounts: who they are, and the rules for their names and passwords.
import { z } from 'zod';

export const ROLES = ['admin', 'user'] as const;
export const roleSchema = z.enum(ROLES);
export type Role = z.infer<typeof roleSchema>;

export const USER_NAME_RE = /^[a-z_][a-z0-9_.-]{0,31}$/;
export const MIN_PASSWORD = 8;

export const userNameSchema = z
  .string()
  .regex(
    USER_NAME_RE,
    'user names are 1-32 characters: lower-case letters, digits, "_", "." or "-", not starting with a digit',
  );
export const passwordSchema = z
  .string()
  .min(MIN_PASSWORD, `passwords need at least ${MIN_PASSWORD} characters`)
  .max(1024);

export const userSchema = z.object({
  id: z.string(),
  name: z.string(),
  role: roleSchema,
  createdAt: z.string(),
});
export type User = z.infer<typeof userSchema>;

export const userNameParams = z.object({ name: z.string() });

/** POST /api/users (admin). */
export const userCreateSchema = z.object({
  name: userNameSchema,
  password: passwordSchema,
  role: roleSchema.default('user'),
});
export type UserCreate = z.input<typeof userCreateSchema>;

/** PUT /api/users/{name}/password (admin). */
export const passwordResetSchema = z.object({ password: passwordSchema });
