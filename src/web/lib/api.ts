// The REST API as the UI uses it: the typed client of src/api, same-origin with the session cookie; errors carry the
// server's message (ApiError). The types are the contract's, inferred from its zod schemas (no zod in the bundle).
import { OrielClient } from '../../api/client.ts';
import { globalFetch, type HttpResponse, type Transport } from '../../api/transport.ts';

export { enc } from '../../api/client.ts';
export { ApiError } from '../../api/transport.ts';
export type {
  Checkpoint, CheckpointSchedule, CheckpointSummary, EventData, EventType, Image, Network, NetworkPort, Operation,
  PruneResult, Quota, QuotaLimits, QuotaResource, RetentionRules, RestoreResult, User, VerifyResult, Vm, VmAction,
  VmState,
} from '../../api/index.ts';

declare global {
  interface Window {
    /** GETs a console page's first script (public/early-link.js) made before this script arrived, by path. */
    orielEarlyGets?: Record<string, Promise<HttpResponse>>;
  }
}

/** fetch, except that a GET the page's first script already made is answered by its response (each once). */
const transport: Transport = (url, init) => {
  const early = window.orielEarlyGets;
  const made = init.method === 'GET' && early ? early[url] : undefined;
  if (!made) return globalFetch(url, init);
  delete early![url];
  return made;
};

/** Called when the server says the session is gone (401): the app goes to the sign-in page. */
let onUnauthorized: () => void = () => undefined;
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

export const client = new OrielClient({
  credentials: 'same-origin',
  transport,
  onError: (e) => {
    if (e.status === 401) onUnauthorized();
  },
});

/** The same, for requests whose 401 only means "not signed in yet" (the first look at who is signed in). */
export const quietClient = new OrielClient({ credentials: 'same-origin', transport });
