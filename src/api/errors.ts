// What every refused request answers: a machine-readable code and a sentence for people.
import { z } from 'zod';

export const errorSchema = z.object({ error: z.string(), message: z.string() });
export type ErrorBody = z.infer<typeof errorSchema>;

/** The body of 204 answers (DELETE, sign-out, password changes). */
export const noContentSchema = z.null();
