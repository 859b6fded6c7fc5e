// Guest RAM back in huge pages after each background snapshot, so that the next checkpoint's pause stays short for
// ordinary-RAM VMs (README.md, "Why the pause grows with RAM"). A background snapshot lifts its write protection
// 4 KiB at a time: that leaves QEMU's RAM mapped by 4 KiB entries, and the next snapshot's populate loop and write
// protection, inside the pause, walk 524,288 of them at 2 GiB (60–100 ms under TCG) instead of 1,024 (~10 ms).
// host/huge-pages-again.ts collapses them again while the guest runs. The cost: ranges the guest never wrote become
// zero-filled huge pages, so QEMU's resident memory grows to the VM's size (the kernel splits underused huge pages
// again under memory pressure). ORIEL_CHECKPOINT_HUGE_AGAIN=off turns it off. A lazy restore places pages 4 KiB at a
// time too, but the kernel refuses to collapse those (EINVAL) until a snapshot has gone over them: the first
// checkpoint after a lazy restore pauses long, the ones after it do not.
import { collapseToHugePages, type CollapseResult } from '../host/huge-pages-again.ts';

const pending = new Map<string, Promise<CollapseResult>>();
const last = new Map<string, CollapseResult>();

/** Whether the server collapses guest RAM after checkpoints (ORIEL_CHECKPOINT_HUGE_AGAIN: `on`, the default, or
 * `off`). */
export function hugeAgainFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.ORIEL_CHECKPOINT_HUGE_AGAIN;
  if (v === undefined || v === '' || v === 'on') return true;
  if (v === 'off') return false;
  throw new Error(`ORIEL_CHECKPOINT_HUGE_AGAIN is '${v}': it must be 'on' (the default) or 'off'`);
}

/** Starts collapsing the RAM of VM `vmId` (QEMU `pid`, `memoryMiB` of ordinary RAM) in the background. */
export function hugePagesAgain(vmId: string, pid: number | null | undefined, memoryMiB: number): void {
  if (!pid || !hugeAgainFromEnv() || pending.has(vmId)) return;
  last.delete(vmId);
  const p = collapseToHugePages(pid, memoryMiB * 2 ** 20).then((r) => {
    last.set(vmId, r);
    return r;
  });
  pending.set(vmId, p);
  void p.finally(() => pending.delete(vmId));
}

/** Waits (at most `maxMs`) for a collapse of `vmId` still running: the next pause should find the huge pages. It
 * takes 0.1–0.2 s at 2 GiB when the huge pages are still whole (mapped 4 KiB at a time), ~3 s when they must be made
 * (the first time, and after other snapshots split them), longer on a busy host; a collapse still running when the
 * pause begins stops at the write protection. */
export async function hugePagesSettled(vmId: string, maxMs = 15_000): Promise<void> {
  const p = pending.get(vmId);
  if (!p) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((r) => { timer = setTimeout(r, maxMs); })]);
  clearTimeout(timer);
}

/** What the last collapse of `vmId` did (benches, tests). */
export const lastHugeAgain = (vmId: string): CollapseResult | undefined => last.get(vmId);
