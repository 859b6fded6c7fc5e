// The REST API as the UI uses it: the typed client of src/api, same-origin with the session cookie; errors carry the
// server's message (ApiError). The types are the contract's, inferred from its zod schemas (no zod in the bundle).
import { OrielClient } from '../../api/client.ts';

export { enc } from '../../api/client.ts';
export { ApiError } from '../../api/transport.ts';
export type {
  Checkpoint, CheckpointSchedule, CheckpointSummary, EventData, EventType, Image, Operation, PruneResult, Quota,
  QuotaLimits, QuotaResource, RetentionRules, RestoreResult, User, VerifyResult, Vm, VmAction, VmState,
} from '../../api/index.ts';

/** Called when the server says the session is gone (401): the app goes to the sign-in page. */
let onUnauthorized: () => void = () => undefined;
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

export const client = new OrielClient({
  credentials: 'same-origin',
  onError: (e) => {
    if (e.status === 401) onUnauthorized();
  },
});

/** The same, for requests whose 401 only means "not signed in yet" (the first look at who is signed in). */
export const quietClient = new OrielClient({ credentials: 'same-origin' });
