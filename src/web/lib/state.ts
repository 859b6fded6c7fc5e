// What the UI knows, as signals: who is signed in, the VMs, operations and images. Kept current by the server's
// event stream (/api/events, EventSource): VM state and operation changes arrive as they happen, and every
// (re)connection of the stream reloads the lists so nothing missed while offline stays stale. No polling.
import { effect, signal } from '@preact/signals';
import {
  client, type EventData, type EventType, type Image, type Operation, type User, type Vm, type VmAction as ApiVmAction,
} from './api.ts';
import { isFinalStatus } from '../../api/states.ts';

/** undefined while the first /api/auth/me is in flight; null when signed out. */
export const me = signal<User | null | undefined>(undefined);
export const vms = signal<Vm[]>([]);
export const vmsLoaded = signal(false);
export const operations = signal<Operation[]>([]);
export const images = signal<Image[]>([]);
/** The event stream: live, or reconnecting (the lists may be stale). */
export const live = signal<'connecting' | 'live' | 'offline'>('connecting');
/** The last checkpoint-schedule change the stream told of (a VM's schedule set, removed or run elsewhere). */
export const scheduleChange = signal<{ vmName: string; at: number } | null>(null);

export interface Notice { id: number; kind: 'error' | 'info'; text: string }
export const notices = signal<Notice[]>([]);
let noticeId = 0;
export function notify(text: string, kind: Notice['kind'] = 'error'): void {
  const n = { id: ++noticeId, kind, text };
  notices.value = [...notices.value, n];
  setTimeout(() => dismiss(n.id), kind === 'error' ? 10_000 : 4_000);
}
export function dismiss(id: number): void {
  notices.value = notices.value.filter((n) => n.id !== id);
}

const byName = (a: Vm, b: Vm) => a.name.localeCompare(b.name);

export function upsertVm(vm: Vm): void {
  const old = vms.value.find((v) => v.id === vm.id);
  if (old && old.updatedAt > vm.updatedAt) return; // an older answer than what the stream already told
  vms.value = [...vms.value.filter((v) => v.id !== vm.id), vm].sort(byName);
}

function removeVm(id: string): void {
  vms.value = vms.value.filter((v) => v.id !== id);
}

export const isFinal = (op: Operation): boolean => isFinalStatus(op.status);

export function upsertOperation(op: Operation): void {
  const old = operations.value.find((o) => o.id === op.id);
  if (old && isFinal(old) && !isFinal(op)) return; // the stream already told how it ended: an older answer
  operations.value = [op, ...operations.value.filter((o) => o.id !== op.id)]
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
    .slice(0, 50);
}

/** Resolves with the operation once the event stream reports it finished (a reconnection reloads the list, so a
 * finish missed while offline arrives then). */
export function whenFinished(op: Operation): Promise<Operation> {
  upsertOperation(op);
  return new Promise((resolve) => {
    let done = false;
    const stop = effect(() => {
      const o = operations.value.find((x) => x.id === op.id);
      if (!done && o && isFinal(o)) {
        done = true;
        resolve(o);
        queueMicrotask(() => stop?.());
      }
    });
  });
}

export async function loadVms(): Promise<void> {
  const list = await client.vms.list();
  const known = new Map(vms.value.map((v) => [v.id, v]));
  vms.value = list.map((v) => {
    const k = known.get(v.id);
    return k && k.updatedAt > v.updatedAt ? k : v;
  }).sort(byName);
  vmsLoaded.value = true;
}

export async function loadOperations(): Promise<void> {
  operations.value = await client.operations.list({ limit: 20 });
}

export async function loadImages(): Promise<void> {
  images.value = await client.images.list();
}

async function reloadAll(): Promise<void> {
  await Promise.all([loadVms(), loadOperations(), loadImages()]).catch((e: Error) => notify(e.message));
}

/** The data of a server-sent event, as the API contract says it is (src/api/events.ts). */
const eventData = <T extends EventType>(ev: Event): EventData<T> =>
  JSON.parse((ev as MessageEvent).data) as EventData<T>;

let events: EventSource | undefined;
let retry: ReturnType<typeof setTimeout> | undefined;

export function startEvents(): void {
  stopEvents();
  live.value = 'connecting';
  const es = new EventSource('/api/events');
  events = es;
  es.onopen = () => {
    live.value = 'live';
    void reloadAll();
  };
  es.addEventListener('vm', (ev) => upsertVm(eventData<'vm'>(ev)));
  es.addEventListener('vm-deleted', (ev) => removeVm(eventData<'vm-deleted'>(ev).id));
  es.addEventListener('operation', (ev) => upsertOperation(eventData<'operation'>(ev)));
  es.addEventListener('checkpoint-schedule', (ev) => {
    scheduleChange.value = { vmName: eventData<'checkpoint-schedule'>(ev).vmName, at: Date.now() };
  });
  // The server ends the stream when the session ends (signed out elsewhere, expired, password changed).
  es.addEventListener('closed', (ev) => {
    es.close();
    live.value = 'offline';
    const reason = eventData<'closed'>(ev).reason;
    if (reason !== 'signed out') notify(`Live updates stopped: ${reason}`);
    client.auth.me().then(() => { if (events === es) startEvents(); }).catch(() => undefined);
  });
  es.onerror = () => {
    live.value = 'offline';
    // EventSource retries network errors by itself but gives up on an HTTP error (a 401 once the session ended):
    // ask who we are (a 401 sends the app to sign-in) and open a new stream if still signed in.
    if (es.readyState === EventSource.CLOSED) {
      retry = setTimeout(() => {
        client.auth.me().then(() => { if (events === es) startEvents(); }).catch(() => undefined);
      }, 2000);
    }
  };
}

export function stopEvents(): void {
  clearTimeout(retry);
  events?.close();
  events = undefined;
}

// --- VM actions -----------------------------------------------------------------------------------------------

export type VmAction = ApiVmAction | 'delete';
/** Actions in flight, as "name:action". */
export const busy = signal<Set<string>>(new Set());

/** Why an action cannot be done in this state (shown on the disabled button), or null when it can. */
export function actionExcuse(vm: Vm, a: VmAction): string | null {
  const s = vm.state;
  const need = (states: string[], what: string) => (states.includes(s) ? null : `${what} (the VM is ${s})`);
  switch (a) {
    case 'start': return need(['stopped', 'crashed'], 'only a stopped or crashed VM can start');
    case 'stop': return need(['running', 'paused'], 'only a running or paused VM can be shut down');
    case 'force-stop': return need(['starting', 'running', 'paused', 'stopping'], 'the VM is not running');
    case 'pause': return need(['running'], 'only a running VM can be paused');
    case 'resume': return need(['paused'], 'only a paused VM can be resumed');
    case 'reset': return need(['running', 'paused'], 'only a running VM can be reset');
    case 'delete': return need(['stopped', 'crashed'], 'stop the VM before deleting it');
  }
}

export async function vmAction(name: string, a: VmAction): Promise<void> {
  const key = `${name}:${a}`;
  busy.value = new Set([...busy.value, key]);
  try {
    if (a === 'delete') {
      await client.vms.delete(name);
      vms.value = vms.value.filter((v) => v.name !== name);
    } else upsertVm(await client.vms.act(name, a));
  } catch (e) {
    notify(`${name}: ${(e as Error).message}`);
  } finally {
    const s = new Set(busy.value);
    s.delete(key);
    busy.value = s;
  }
}
