// A VM's CD-ROM medium (eject, insert an uploaded ISO), turning a stopped VM into a template, growing its disk.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { changeMedia, makeTemplate, resizeDisk } from '../../vm/vm-changes.ts';
import { requireUser } from '../auth/plugin.ts';
import type { ServerContext } from '../context.ts';
import { errorSchema, mediaSchema, resizeSchema, vmParams, vmSchema } from '../../api/index.ts';
import { vmView } from '../views.ts';
import { vmFor } from './vms.ts';

export function vmMediaRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const caller = (req: FastifyRequest) => {
    const u = requireUser(req);
    return { id: u.id, admin: u.role === 'admin' };
  };

  r.post('/api/vms/:vm/media', {
    schema: {
      tags: ['vms'],
      summary: "Eject the CD-ROM drive's medium or insert an uploaded ISO: at once on a running VM (through QMP), "
        + 'at the next start on a stopped one',
      params: vmParams, body: mediaSchema, response: { 200: vmSchema, 409: errorSchema },
    },
  }, async (req) => {
    const vm = vmFor(ctx, req, req.params.vm);
    return vmView(await changeMedia(ctx.vms, vm.id, req.body, caller(req)), ctx);
  });

  r.post('/api/vms/:vm/template', {
    schema: {
      tags: ['vms'],
      summary: 'Make a stopped VM a read-only template (vm create --from makes linked clones of it)',
      params: vmParams, response: { 200: vmSchema, 409: errorSchema },
    },
  }, async (req) => vmView(await makeTemplate(ctx.vms, vmFor(ctx, req, req.params.vm).id), ctx));

  r.post('/api/vms/:vm/resize', {
    schema: {
      tags: ['vms'],
      summary: "Grow a stopped VM's disk to diskBytes (counted against the disk quota)",
      params: vmParams, body: resizeSchema, response: { 200: vmSchema, 400: errorSchema, 409: errorSchema },
    },
  }, async (req) => {
    const vm = vmFor(ctx, req, req.params.vm);
    const done = await resizeDisk(ctx.vms, ctx.config.qemuImgBinary, vm.id, req.body.diskBytes,
      (v, add) => ctx.quotas.admitGrow(v, add));
    return vmView(done, ctx);
  });
}
