// How QEMU's run state shows in a VM's state while Oriel does not drive it itself.
import type { QmpClient, QmpEvent } from './qmp/index.ts';
import type { VmState } from './spec.ts';

/** The state a STOP or RESUME event makes of `current`: pauses and resumes done from outside Oriel (a QEMU monitor,
 * a guest panic) still show. Undefined when the event changes nothing. */
export function stateFromEvent(ev: QmpEvent, current: VmState): { state: VmState; reason: string | null } | undefined {
  if (ev.event === 'STOP' && current === 'running') return { state: 'paused', reason: 'paused by QEMU' };
  if (ev.event === 'RESUME' && current === 'paused') return { state: 'running', reason: null };
  return undefined;
}

/** After a session that owned the run state (withQmp): running or paused from QEMU's `query-status`; undefined when
 * QEMU cannot tell (gone, or not answering). */
export async function runStateNow(qmp: QmpClient): Promise<'running' | 'paused' | undefined> {
  if (qmp.isClosed) return undefined;
  const st = await qmp.queryStatus().catch(() => undefined);
  return st ? (st.running ? 'running' : 'paused') : undefined;
}
