import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { notFound } from '../../errors.ts';
import { builders, findBuiltImage, imageBuilder, listImages } from '../../vm/images/registry.ts';
import { requireAdmin, requireUser } from '../auth/plugin.ts';
import type { ServerContext } from '../context.ts';
import { operationSchema, operationView } from '../schemas.ts';

export function imageRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/api/images',
    {
      schema: {
        tags: ['images'],
        summary: 'Images Oriel can build, and whether they are built',
        response: {
          200: z.array(
            z.object({
              name: z.string(),
              description: z.string(),
              built: z.boolean(),
              recipe: z.string(),
              builtAt: z.string().optional(),
              sizeBytes: z.number().optional(),
            }),
          ),
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
        params: z.object({ name: z.string() }),
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

/** Starts (or joins, if one is already running) the build of an image. */
export function startImageBuild(ctx: ServerContext, name: string, userId: string | null) {
  const b = imageBuilder(name);
  if (!b) throw notFound(`unknown image '${name}': known images are ${Object.keys(builders).join(', ')}`);
  const kind = `image.build:${name}`;
  const running = ctx.ops.list({ limit: 50 }).find((o) => o.kind === kind && o.status === 'running');
  if (running) return running;
  return ctx.ops.start(kind, { userId }, async (op) => {
    const m = await b.build({ cacheDir: ctx.config.cacheDir, signal: op.signal, progress: op.progress, log: op.log });
    return { image: m.name, recipe: m.recipe, sizeBytes: m.sizeBytes };
  });
}

/** The image a demo VM gets: the desktop once it is built (building it takes minutes), else the tiny one. */
export function demoImage(ctx: ServerContext): { image: 'desktop' | 'tiny'; warning?: string } {
  try {
    return { image: findBuiltImage(ctx.config.cacheDir, 'desktop') ? 'desktop' : 'tiny' };
  } catch (e) {
    return {
      image: 'tiny',
      warning: `cannot tell whether the desktop image is built (${(e as Error).message}); using tiny`,
    };
  }
}
