// `oriel serve --demo` (what `npm start` runs): a VM named 'demo' owned by the first admin, a desktop by default (its
// image built first when missing: minutes, with progress), on a --nat network named 'demo' made at start if missing,
// started once its image is built.
import type { Progress, VmState } from '../api/index.ts';
import type { OrielServer } from './app.ts';
import type { ServerContext } from './context.ts';
import { startImageBuild } from './image-builds.ts';

export const DEMO_VM = 'demo';
/** The network the demo VM is on: --nat, so the desktop reaches out through the host. */
export const DEMO_NETWORK = 'demo';
/** How long the demo waits for its image to build. */
const BUILD_TIMEOUT_MS = 30 * 60 * 1000;

/** Picks the demo's image (IMAGE, else the desktop: if it cannot be built here, tiny), builds it if needed (its
 * progress goes to `onProgress`), then creates and starts the demo VM on the demo network. A demo VM that already
 * exists keeps its image and networks. Resolves with the VM's state, or nothing when there is no admin to own it. */
export async function startDemo(
  server: OrielServer,
  imageName: string | undefined,
  onProgress: (image: string, p: Progress) => void,
): Promise<{ vm: string; image: string; network: string; state: VmState } | undefined> {
  const { ctx } = server;
  const admin = ctx.users.list().find((u) => u.role === 'admin');
  if (!admin) return undefined;
  let image = imageName ?? 'desktop';
  try {
    await buildImage(ctx, image, admin.id, onProgress);
  } catch (e) {
    if (imageName) throw e;
    server.app.log.warn(`demo VM: ${(e as Error).message}; using the tiny image`);
    image = 'tiny';
    await buildImage(ctx, image, admin.id, onProgress);
  }
  const who = { id: admin.id, role: 'admin' as const };
  const net = ctx.networks.list().find((n) => n.name === DEMO_NETWORK)
    ?? ctx.networks.create(who, { name: DEMO_NETWORK, nat: true });
  let vm = ctx.vms.records.byName(DEMO_VM);
  vm ??= await ctx.vms.create(
    image === 'tiny' ? { name: DEMO_VM, image, memoryMiB: 256 } : { name: DEMO_VM, image },
    admin.id,
    { networks: ctx.networks.forNewVm(who, [net.id]) },
  );
  if (vm.state === 'stopped' || vm.state === 'crashed') vm = await ctx.vms.start(vm.id);
  return { vm: DEMO_VM, image, network: net.name, state: vm.state };
}

async function buildImage(
  ctx: ServerContext, image: string, adminId: string, onProgress: (image: string, p: Progress) => void,
): Promise<void> {
  const op = startImageBuild(ctx, image, adminId);
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
}
