// Uploaded images (ISOs, disk images): announce, send (resumable: PUT chunks with Content-Range at increasing
// offsets, each streamed to disk), list, delete. Each image is its uploader's; admins see and use all.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { conflict, OrielError } from '../../errors.ts';
import { parseContentRange, receiveChunk } from '../../vm/uploads/receive.ts';
import type { Caller, UploadedImageRecord } from '../../vm/uploads/store.ts';
import { requireUser } from '../auth/plugin.ts';
import type { ServerContext } from '../context.ts';
import {
  errorSchema, noContentSchema, uploadCreateSchema, uploadedImageSchema, uploadParams, type UploadedImage,
} from '../../api/index.ts';

const caller = (req: FastifyRequest): Caller => {
  const u = requireUser(req);
  return { id: u.id, admin: u.role === 'admin' };
};

export function uploadedImageView(img: UploadedImageRecord, ctx: ServerContext): UploadedImage {
  return {
    name: img.name, owner: ctx.users.get(img.ownerId)?.name ?? img.ownerId, state: img.state, kind: img.kind,
    format: img.format, sizeBytes: img.sizeBytes, receivedBytes: img.receivedBytes, virtualSizeBytes: img.virtualSize,
    createdAt: img.createdAt,
  };
}

/** Registered in a scope of its own: the octet-stream body parser hands the request stream over unread. */
export async function uploadRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
  const r = app.withTypeProvider<ZodTypeProvider>();
  const images = ctx.vms.images;
  const view = (img: UploadedImageRecord) => uploadedImageView(img, ctx);

  r.get('/api/images/uploads', {
    schema: { tags: ['images'], summary: 'Uploaded images (yours; all for admins)', response: { 200: z.array(uploadedImageSchema) } },
  }, async (req) => {
    const c = caller(req);
    return images.list(c.admin ? undefined : c.id).map(view);
  });

  r.post('/api/images/uploads', {
    schema: {
      tags: ['images'],
      summary: 'Announce an upload (ISO or disk image) of sizeBytes: refused when it would pass your disk quota '
        + 'or the free space (413); then PUT its bytes to /api/images/uploads/{name}/data',
      body: uploadCreateSchema,
      response: { 201: uploadedImageSchema, 409: errorSchema, 413: errorSchema },
    },
  }, async (req, reply) => {
    const c = caller(req);
    const admit = (owner: string, bytes: number) => ctx.quotas.admitUpload(owner, bytes);
    const img = images.create(c.id, req.body.name, req.body.sizeBytes, admit);
    return reply.code(201).send(view(img));
  });

  r.get('/api/images/uploads/:name', {
    schema: { tags: ['images'], summary: 'One uploaded image (receivedBytes: where an interrupted upload resumes)',
      params: uploadParams, response: { 200: uploadedImageSchema } },
  }, async (req) => view(images.get(req.params.name, caller(req))));

  r.put('/api/images/uploads/:name/data', {
    schema: {
      tags: ['images'],
      summary: 'Send bytes of an upload (Content-Type: application/octet-stream), at Content-Range: bytes '
        + 'START-END/TOTAL (START must be receivedBytes; no Content-Range: from byte 0). The last chunk makes it ready.',
      params: uploadParams,
      response: { 200: uploadedImageSchema, 409: errorSchema, 413: errorSchema, 422: errorSchema },
    },
  }, async (req) => {
    const img = images.get(req.params.name, caller(req));
    if (!(req.body && typeof (req.body as Readable).pipe === 'function'))
      throw new OrielError(415, 'send the bytes as Content-Type: application/octet-stream', 'unsupported_media_type');
    const range = parseContentRange(req.headers['content-range']);
    const len = req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : undefined;
    if (range && len !== undefined && range.end - range.start + 1 !== len)
      throw new OrielError(400, 'Content-Range and Content-Length disagree', 'bad_request');
    const done = await receiveChunk(images, img, {
      start: range?.start ?? 0,
      ...(len !== undefined && Number.isFinite(len) ? { length: len } : {}),
      ...(range?.total !== undefined ? { total: range.total } : {}),
      body: req.body as Readable,
    }, ctx.config.qemuImgBinary);
    return view(done);
  });

  r.delete('/api/images/uploads/:name', {
    schema: { tags: ['images'], summary: 'Delete an uploaded image no VM uses', params: uploadParams,
      response: { 204: noContentSchema, 409: errorSchema } },
  }, async (req, reply) => {
    const img = images.get(req.params.name, caller(req));
    const file = images.file(img);
    const users = ctx.vms.list().filter((v) => v.spec.baseDisk === file || v.spec.cdrom?.file === file);
    if (users.length) throw conflict(`image '${img.name}' is used by VM ${users.map((v) => `'${v.name}'`).join(', ')}`);
    images.remove(img);
    return reply.code(204).send(null);
  });
}
