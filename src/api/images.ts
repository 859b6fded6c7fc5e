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

// ---- Uploaded images: install media (ISO) and disk images a user brings, each theirs alone (admins see all) ----

export const IMAGE_KINDS = ['iso', 'disk'] as const;
export const UPLOAD_STATES = ['uploading', 'ready'] as const;
/** Names of uploaded images: the shape of VM names (and never a built image's name). */
export const IMAGE_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** The largest chunk one PUT of an upload may carry. */
export const UPLOAD_CHUNK_MAX = 64 * 1024 * 1024;

export const uploadedImageSchema = z.object({
  name: z.string(),
  owner: z.string(),
  state: z.enum(UPLOAD_STATES).describe('uploading: bytes still missing (resume at receivedBytes); ready: usable'),
  kind: z.enum(IMAGE_KINDS).nullable().describe('iso (a CD-ROM image) or disk (qcow2/raw); null until ready'),
  format: z.string().nullable().describe('iso, raw or qcow2; null until ready'),
  sizeBytes: z.number().describe('the file size announced at creation: what counts against the disk quota'),
  receivedBytes: z.number(),
  virtualSizeBytes: z.number().nullable().describe('a disk image\'s virtual size'),
  createdAt: z.string(),
});
export type UploadedImage = z.infer<typeof uploadedImageSchema>;

/** POST /api/images/uploads: announces an upload (its size is checked against the quota and free space). */
export const uploadCreateSchema = z
  .object({
    name: z.string().regex(IMAGE_NAME_RE, 'name must be 1-63 characters: lower-case letters, digits, ".", "_" or "-"'),
    sizeBytes: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  })
  .strict();
export type UploadCreate = z.input<typeof uploadCreateSchema>;
export const uploadParams = z.object({ name: z.string().max(64) });
