// Guest images Oriel can build, and whether they are built.
import { z } from 'zod';

export const imageSchema = z.object({
  name: z.string(),
  description: z.string(),
  built: z.boolean(),
  recipe: z.string(),
  builtAt: z.string().optional(),
  sizeBytes: z.number().optional(),
});
export type Image = z.infer<typeof imageSchema>;

export const imageParams = z.object({ name: z.string() });
