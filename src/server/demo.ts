// `oriel serve --demo`: a VM named 'demo' owned by the first admin, started once its image is built.
import type { Progress, VmState } from '../api/index.ts';
import { findBuiltImage } from '../vm/images/registry.ts';
import type { OrielServer } from './app.ts';
import type { ServerContext } from './context.ts';
import { startImageBuild } from './image-builds.ts';

export const DEMO_VM = 'demo';
/** How long the demo waits for its image to build. */
const BUILD_TIMEOUT_MS = 30 * 60 * 1000;

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

/** Picks the demo's image (IMAGE, else desktop if built, else tiny), builds it if needed (its progress goes to
 * `onProgress`), then creates and starts the demo VM. A demo VM that already exists keeps its image. Resolves with
 * the VM's state, or nothing when there is no admin to own it. */
export async function startDemo(
  server: OrielServer,
  imageName: string | undefined,
  onProgress: (image: string, p: Progress) => void,
): Promise<{ vm: string; image: string; state: VmState } | undefined> {
  const { ctx } = server;
  const admin = ctx.users.list().find((u) => u.role === 'admin');
  if (!admin) return undefined;
  let image = imageName;
  if (!image) {
    const d = demoImage(ctx);
    if (d.warning) server.app.log.warn(`demo VM: ${d.warning}`);
    image = d.image;
  }
  const op = startImageBuild(ctx, image, admin.id);
  const onChange = (o: { id: string; progress: Progress }) => {
    if (o.id === op.id) onProgress(image, o.progress);
  };
  ctx.ops.on('changed', onChange);
  let done;
  try {
    done = await ctx.ops.wait(op.id, BUILD_TIMEOUT_MS);
  } finally {
    ctx.ops.off('changed', onChange);
  }
  if (done.status !== 'succeeded') throw new Error(`building the ${image} image ${done.status}: ${done.error}`);
  let vm = ctx.vms.records.byName(DEMO_VM);
  vm ??= await ctx.vms.create(
    image === 'tiny' ? { name: DEMO_VM, image, memoryMiB: 256 } : { name: DEMO_VM, image },
    admin.id,
  );
  if (vm.state === 'stopped' || vm.state === 'crashed') vm = await ctx.vms.start(vm.id);
  return { vm: DEMO_VM, image, state: vm.state };
}
