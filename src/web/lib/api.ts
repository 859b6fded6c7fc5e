// The REST API as the UI uses it: same-origin fetch with the session cookie; errors carry the server's message.

export interface User { id: string; name: string; role: 'admin' | 'user'; createdAt: string }
export type VmState = 'stopped' | 'starting' | 'running' | 'paused' | 'stopping' | 'crashed';
export interface Vm {
  id: string;
  name: string;
  owner: string;
  state: VmState;
  stateReason: string | null;
  pid: number | null;
  memoryMiB: number;
  cpus: number;
  display: 'std' | 'qxl';
  accel: string;
  hugepages: boolean;
  image: string | null;
  createdAt: string;
  updatedAt: string;
}
export interface Operation {
  id: string; kind: string; vm: string | null; user: string | null;
  status: 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  progress: { done: number; total: number; stage: string }; error: string | null; log: string[];
  createdAt: string; startedAt: string | null; finishedAt: string | null;
  /** What a succeeded operation produced (a checkpoint, a restore's target VM, a verify report). */
  result?: unknown;
}
/** One checkpoint as GET /api/vms/NAME/checkpoints lists it. Written = newBytes (RAM and device state the checkpoint
 * adds over its parent, counted as if no other VM's checkpoints were stored) + diskBytes (the disk
 * image: whole for 'full', changes since the parent for 'incremental'). */
export interface Checkpoint {
  id: string; vmId: string; vmName: string; createdAt: string; kind: 'manual' | 'scheduled'; label?: string;
  parent: string | null; pauseMs: number | null; durationMs: number; newBytes: number; diskBytes: number;
  diskMode: 'full' | 'incremental' | null;
}
/** Retention of scheduled checkpoints (Proxmox Backup Server's keep-last/-hourly/-daily/-weekly/-monthly). */
export interface RetentionRules {
  keepLast?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
}
export interface CheckpointSchedule {
  vm: string;
  every: string;
  rules: RetentionRules;
  updatedAt: string;
  lastRunAt: string | null;
  lastError: string | null;
  nextRunAt: string | null;
}
export interface Image {
  name: string;
  description: string;
  built: boolean;
  recipe: string;
  builtAt?: string;
  sizeBytes?: number;
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly code?: string) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Called when the server says the session is gone (401): the app goes to the sign-in page. */
let onUnauthorized: () => void = () => undefined;
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

export async function api<T = unknown>(
  method: string,
  path: string,
  body?: unknown,
  opts: { quiet401?: boolean } = {},
): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data: unknown;
  try { data = text ? JSON.parse(text) : undefined; } catch { data = text; }
  if (!res.ok) {
    const e = data as { message?: string; error?: string } | undefined;
    if (res.status === 401 && !opts.quiet401) onUnauthorized();
    throw new ApiError(res.status, e?.message ?? `${method} ${path}: HTTP ${res.status}`, e?.error);
  }
  return data as T;
}

export const enc = encodeURIComponent;
