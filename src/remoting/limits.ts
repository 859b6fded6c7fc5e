// Resource limits on an OpenCL helper, set by prlimit(1) (util-linux) just before it execs the helper's sandbox
// (sandbox.ts): hard limits, which the helper can lower but never raise again. RLIMIT_NPROC counts the tasks
// (processes and threads) of the helper's uid, so it is only set when the helper has a uid of its own (uids.ts): a
// fork bomb in a kernel then stops at the limit. No core dumps (they would hold guest data).
// Not limited: address space (PoCL and V8 reserve far more than they use) and CPU time (kernels may run long).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export const PRLIMIT = '/usr/bin/prlimit';

/** Tasks a helper's uid may have: Node's and PoCL's threads (one per CPU) with room to spare. */
export const helperNproc = (): number => 64 + 4 * availableParallelism();

/** The prlimit prefix for `argv`, or none when prlimit is not installed. */
export function limitArgs(o: { nproc?: number }): string[] {
  if (!existsSync(PRLIMIT)) return [];
  return [PRLIMIT, '--core=0:0', ...(o.nproc !== undefined ? [`--nproc=${o.nproc}:${o.nproc}`] : []), '--'];
}
