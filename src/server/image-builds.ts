// Building guest images as operations: for POST /api/images/{name}/build and for `oriel serve --demo`.
import { notFound } from '../errors.ts';
import { builders, imageBuilder } from '../vm/images/registry.ts';
import type { ServerContext } from './context.ts';

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
