// Guest RAM back in huge pages after each background snapshot, so that the next checkpoint's pause stays short for
// ordinary-RAM VMs (README.md, "Why the pause grows with RAM"). A background snapshot lifts its write protection
// 4 KiB at a time: that leaves QEMU's RAM mapped by 4 KiB entries, and the next snapshot's populate loop and write
// protection, inside the pause, walk 524,288 of them at 2 GiB (60–100 ms under TCG) instead of 1,024 (~10 ms).
// host/huge-pages-again.ts collapses them again while the guest runs; one VM at a time on the whole server.
// The cost: ranges the guest never wrote become zero-filled huge pages, so QEMU's resident memory grows to the VM's
// size and stays there (the kernel splits underused huge pages only from 6.12 on, under memory pressure, and only
// when khugepaged's max_ptes_none is below its default 511): ORIEL_CHECKPOINT_HUGE_AGAIN=off for hosts that
// overcommit memory. A lazy restore places pages 4 KiB at a time too, but the kernel refuses to collapse those
// (EINVAL) until a snapshot has gone over them: the first checkpoint after a lazy restore pauses long, the ones after
// it do not.
import { collapseToHugePages, type CollapseResult } from '../host/huge-pages-again.ts';

interface Collapse {
  done: Promise<void>;
  stop: boolean;
  /** Its turn in the server's queue has come. */
  started: boolean;
}
const pending = new Map<string, Collapse>();
const last = new Map<string, CollapseResult>();
/** The tail of the server's one queue of collapses. */
let queue: Promise<unknown> = Promise.resolve();

/** Whether the server collapses guest RAM after checkpoints (ORIEL_CHECKPOINT_HUGE_AGAIN: `on`, the default, or
 * `off`). */
export function hugeAgainFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.ORIEL_CHECKPOINT_HUGE_AGAIN;
  if (v === undefined || v === '' || v === 'on') return true;
  if (v === 'off') return false;
  throw new Error(`ORIEL_CHECKPOINT_HUGE_AGAIN is '${v}': it must be 'on' (the default) or 'off'`);
}

/** Queues a collapse of the RAM of VM `vmId` (QEMU `pid`, `memoryMiB` of ordinary RAM); never throws. */
export function hugePagesAgain(vmId: string, pid: number | null | undefined, memoryMiB: number): void {
  let on: boolean;
  try {
    on = hugeAgainFromEnv(); // checked at the server's start; a bench or test may set it wrong
  } catch {
    on = false;
  }
  if (!pid || !on || pending.has(vmId)) return;
  last.delete(vmId);
  const c: Collapse = { stop: false, started: false, done: Promise.resolve() };
  const run = queue.then(() => {
    c.started = true;
    return collapseToHugePages(pid, memoryMiB * 2 ** 20, () => c.stop);
  });
  queue = run.catch(() => undefined);
  // A collapse dropped from the queue (hugePagesSettled) is no longer the VM's: it neither reports nor unregisters.
  const mine = () => pending.get(vmId) === c;
  c.done = run.then(
    (r) => { if (mine()) remember(vmId, r); },
    (e: Error) => { if (mine()) remember(vmId, { skipped: e.message }); },
  ).finally(() => { if (mine()) pending.delete(vmId); });
  pending.set(vmId, c);
}

function remember(vmId: string, r: CollapseResult): void {
  last.set(vmId, r);
  if (last.size > 256) last.delete(last.keys().next().value!); // the oldest VM's
}

/** Before a pause: waits (at most `maxMs`) for a collapse of `vmId` to finish, then stops it and waits for its step in
 * flight (≤ 32 MiB), so that no collapse runs inside the pause; one still queued behind another VM's is dropped, not
 * waited for (another user's large VM must not hold this checkpoint). A collapse takes 0.1–0.3 s at 2 GiB when the
 * huge pages are still whole (mapped 4 KiB at a time), ~3 s when they must be made (the first time, or after other
 * snapshots). */
export async function hugePagesSettled(vmId: string, maxMs = 15_000): Promise<void> {
  const c = pending.get(vmId);
  if (!c) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([c.done, new Promise((r) => { timer = setTimeout(r, maxMs); })]);
  clearTimeout(timer);
  c.stop = true;
  if (c.started) await c.done;
  else if (pending.get(vmId) === c) pending.delete(vmId);
}

/** What the last collapse of `vmId` did (benches, tests). */
export const lastHugeAgain = (vmId: string): CollapseResult | undefined => last.get(vmId);
