import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { listImages } from '../../vm/images/registry.ts';
import { requireAdmin, requireUser } from '../auth/plugin.ts';
import type { ServerContext } from '../context.ts';
import { imageParams, imageSchema, operationSchema } from '../../api/index.ts';
import { startImageBuild } from '../image-builds.ts';
import { operationView } from '../views.ts';

export function imageRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/api/images',
    {
      schema: {
        tags: ['images'],
        summary: 'Images Oriel can build, and whether they are built',
        response: {
          200: z.array(imageSchema),
        },
      },
    },
    async (req) => {
      requireUser(req);
      return listImages(ctx.config.cacheDir);
    },
  );
  r.post(
    '/api/images/:name/build',
    {
      schema: {
        tags: ['images'],
        summary: 'Build an image into the cache (an operation; instant when already built). Admin only.',
        params: imageParams,
        response: { 202: operationSchema },
      },
    },
    async (req, reply) => {
      const user = requireAdmin(req);
      const op = startImageBuild(ctx, req.params.name, user.id);
      return reply.code(202).send(operationView(op, ctx.users, ctx.vms));
    },
  );
}
