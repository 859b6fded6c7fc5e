// One typed client of the REST API for the web UI and the CLI. Its methods return the types inferred from the zod
// schemas of this folder (imported as types only: the client itself loads no zod). Where it sends requests is a
// Transport: the global fetch by default, the CLI's certificate-pinning one there.
import type { Login, LoginResult, PasswordChange } from './auth.ts';
import type {
  Checkpoint, CheckpointDetail, CheckpointSchedule, Prune, PruneResult, RestoreFromStoreRequest, RestoreRequest,
  ScheduleSet,
} from './checkpoints.ts';
import type { ConsoleTicket } from './console.ts';
import type { Image, UploadCreate, UploadedImage } from './images.ts';
import type { CaptureQuery, Forward, ForwardCreate, Network, NetworkCreate } from './networks.ts';
import type { Operation, OperationListQuery } from './operations.ts';
import type { Quota, QuotaSet } from './quotas.ts';
import type { CreatedToken, Token, TokenCreate } from './tokens.ts';
import { globalFetch, refusal, parseBody, type ApiError, type HttpRequest, type Transport } from './transport.ts';
import type { User, UserCreate } from './users.ts';
import type { Exec, ExecResult, LogQuery, Media, Resize, Vm, VmAction, VmCreate, VmLog } from './vms.ts';

/** A file to upload, read a chunk at a time (a File's slice in browsers, a file descriptor in the CLI). */
export interface UploadSource {
  size: number;
  /** Bytes [start, end). */
  read(start: number, end: number): Promise<Uint8Array>;
}

/** Bytes per PUT of an upload: small enough to resend cheaply after a broken connection. */
export const UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024;

export interface ClientOptions {
  /** The server's URL (no trailing slash); '' (the default): the page's own origin. */
  baseUrl?: string;
  transport?: Transport;
  /** Headers of every authenticated request (the CLI's Authorization: Bearer). */
  authHeaders?: () => Record<string, string>;
  /** Browsers: send the session cookie. */
  credentials?: HttpRequest['credentials'];
  /** Sees each refusal before it is thrown; may throw an error of its own instead (the CLI's CliError). */
  onError?: (e: ApiError, req: { method: string; path: string; auth: boolean }) => void;
}

export interface RequestOptions {
  /** false: no authHeaders (signing in). */
  auth?: boolean;
  headers?: Record<string, string>;
}

export const enc = encodeURIComponent;
const query = (q: Record<string, string | number | boolean | undefined>) => {
  const s = Object.entries(q)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${enc(String(v))}`)
    .join('&');
  return s ? `?${s}` : '';
};

export class OrielClient {
  readonly baseUrl: string;
  private readonly o: ClientOptions;

  constructor(o: ClientOptions = {}) {
    this.o = o;
    this.baseUrl = (o.baseUrl ?? '').replace(/\/+$/, '');
  }

  /** One request; the answer's JSON (undefined for 204). A refusal throws ApiError (or what onError throws). */
  async request<T = unknown>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
    const auth = opts.auth ?? true;
    const headers: Record<string, string> = { ...(auth ? this.o.authHeaders?.() : {}), ...opts.headers };
    const init: HttpRequest = { method, headers };
    if (body instanceof Uint8Array) {
      headers['content-type'] = 'application/octet-stream';
      init.body = body;
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (this.o.credentials) init.credentials = this.o.credentials;
    const res = await (this.o.transport ?? globalFetch)(this.baseUrl + path, init);
    const text = await res.text();
    if (res.status < 200 || res.status > 299) {
      const e = refusal(method, path, res, text);
      this.o.onError?.(e, { method, path, auth });
      throw e;
    }
    return parseBody(text) as T;
  }

  private get<T>(path: string) { return this.request<T>('GET', path); }
  private post<T>(path: string, body: unknown = {}) { return this.request<T>('POST', path, body); }
  private put<T>(path: string, body: unknown) { return this.request<T>('PUT', path, body); }
  private del<T = void>(path: string) { return this.request<T>('DELETE', path); }

  readonly auth = {
    login: (b: Login) => this.request<LoginResult>('POST', '/api/auth/login', b, { auth: false }),
    logout: () => this.post<void>('/api/auth/logout'),
    me: () => this.get<User>('/api/auth/me'),
    changePassword: (b: PasswordChange) => this.post<void>('/api/me/password', b),
  };

  readonly users = {
    list: () => this.get<User[]>('/api/users'),
    create: (b: UserCreate) => this.post<User>('/api/users', b),
    setPassword: (name: string, password: string) => this.put<void>(`/api/users/${enc(name)}/password`, { password }),
    delete: (name: string) => this.del(`/api/users/${enc(name)}`),
  };

  /** A user's quota (no name: mine). */
  readonly quotas = {
    get: (name?: string) => this.get<Quota>(name ? `/api/users/${enc(name)}/quota` : '/api/me/quota'),
    set: (name: string, b: QuotaSet) => this.put<Quota>(`/api/users/${enc(name)}/quota`, b),
    reset: (name: string) => this.del<Quota>(`/api/users/${enc(name)}/quota`),
  };

  readonly tokens = {
    list: (o: { all?: boolean } = {}) => this.get<Token[]>(`/api/tokens${o.all ? '?all=1' : ''}`),
    create: (b: TokenCreate) => this.post<CreatedToken>('/api/tokens', b),
    revoke: (id: string) => this.del(`/api/tokens/${enc(id)}`),
  };

  readonly vms = {
    list: () => this.get<Vm[]>('/api/vms'),
    get: (vm: string) => this.get<Vm>(`/api/vms/${enc(vm)}`),
    create: (b: VmCreate) => this.post<Vm>('/api/vms', b),
    delete: (vm: string) => this.del(`/api/vms/${enc(vm)}`),
    /** start, stop (timeoutSec: forced off after it), force-stop, pause, resume, reset. */
    act: (vm: string, action: VmAction, o: { timeoutSec?: number } = {}) =>
      this.post<Vm>(`/api/vms/${enc(vm)}/${action}`, o),
    exec: (vm: string, b: Exec) => this.post<ExecResult>(`/api/vms/${enc(vm)}/exec`, b),
    log: (vm: string, q: LogQuery = {}) => this.get<VmLog>(`/api/vms/${enc(vm)}/log${query(q)}`),
    consoleTicket: (vm: string) => this.post<ConsoleTicket>(`/api/vms/${enc(vm)}/console-ticket`),
    /** Host ports (on the host's loopback) that reach the VM's guest ports: it needs a card on a --nat network. */
    forwards: (vm: string) => this.get<Forward[]>(`/api/vms/${enc(vm)}/forwards`),
    addForward: (vm: string, b: ForwardCreate) => this.post<Forward>(`/api/vms/${enc(vm)}/forwards`, b),
    removeForward: (vm: string, proto: Forward['proto'], hostPort: number) =>
      this.del(`/api/vms/${enc(vm)}/forwards/${proto}/${hostPort}`),
    /** Eject the CD-ROM's medium, or insert an uploaded ISO. */
    media: (vm: string, b: Media) => this.post<Vm>(`/api/vms/${enc(vm)}/media`, b),
    /** A stopped VM becomes a read-only template (create --from makes linked clones). */
    template: (vm: string) => this.post<Vm>(`/api/vms/${enc(vm)}/template`),
    /** Grow a stopped VM's disk. */
    resize: (vm: string, b: Resize) => this.post<Vm>(`/api/vms/${enc(vm)}/resize`, b),
  };

  /** Virtual networks: mine and shared ones (admins: all). */
  readonly networks = {
    list: () => this.get<Network[]>('/api/networks'),
    get: (net: string) => this.get<Network>(`/api/networks/${enc(net)}`),
    create: (b: NetworkCreate) => this.post<Network>('/api/networks', b),
    delete: (net: string) => this.del(`/api/networks/${enc(net)}`),
    /** The URL of a live capture (a pcap stream, not JSON): for a streaming GET of one's own, with the auth headers. */
    captureUrl: (net: string, q: CaptureQuery = {}) => `${this.baseUrl}/api/networks/${enc(net)}/capture${query(q)}`,
  };

  readonly images = {
    list: () => this.get<Image[]>('/api/images'),
    /** An operation (admins); instant when the image is already built. */
    build: (name: string) => this.post<Operation>(`/api/images/${enc(name)}/build`),
  };

  /** Images users upload (ISOs, disk images): each its uploader's. */
  readonly uploads = {
    list: () => this.get<UploadedImage[]>('/api/images/uploads'),
    get: (name: string) => this.get<UploadedImage>(`/api/images/uploads/${enc(name)}`),
    announce: (b: UploadCreate) => this.post<UploadedImage>('/api/images/uploads', b),
    /** Bytes at `start` of an upload of `total` bytes. */
    sendChunk: (name: string, start: number, bytes: Uint8Array, total: number) =>
      this.request<UploadedImage>('PUT', `/api/images/uploads/${enc(name)}/data`, bytes, {
        headers: { 'content-range': `bytes ${start}-${start + bytes.length - 1}/${total}` },
      }),
    delete: (name: string) => this.del(`/api/images/uploads/${enc(name)}`),
    /** Uploads `src` as `name` in chunks; an unfinished upload of the same name and size resumes where it stopped. */
    send: async (name: string, src: UploadSource, onProgress?: (done: number, total: number) => void) => {
      const prior = (await this.uploads.list()).find((i) => i.name === name);
      let img = prior && prior.state === 'uploading' && prior.sizeBytes === src.size
        ? prior
        : await this.uploads.announce({ name, sizeBytes: src.size });
      onProgress?.(img.receivedBytes, src.size);
      while (img.state === 'uploading') {
        const start = img.receivedBytes;
        const bytes = await src.read(start, Math.min(src.size, start + UPLOAD_CHUNK_BYTES));
        img = await this.uploads.sendChunk(name, start, bytes, src.size);
        onProgress?.(img.receivedBytes, src.size);
      }
      return img;
    },
  };

  readonly operations = {
    list: (q: OperationListQuery = {}) => this.get<Operation[]>(`/api/operations${query(q)}`),
    get: (id: string) => this.get<Operation>(`/api/operations/${enc(id)}`),
    /** Answers when the operation has finished, or after timeoutSec with its current state. */
    wait: (id: string, timeoutSec?: number) =>
      this.get<Operation>(`/api/operations/${enc(id)}/wait${query({ timeoutSec })}`),
    cancel: (id: string) => this.del<Operation>(`/api/operations/${enc(id)}`),
  };

  /** Checkpoints of one VM. take, restore and verify answer with the operation to follow. */
  readonly checkpoints = {
    list: (vm: string) => this.get<Checkpoint[]>(`/api/vms/${enc(vm)}/checkpoints`),
    get: (vm: string, id: string) => this.get<CheckpointDetail>(`/api/vms/${enc(vm)}/checkpoints/${enc(id)}`),
    take: (vm: string, o: { label?: string } = {}) => this.post<Operation>(`/api/vms/${enc(vm)}/checkpoints`, o),
    /** In place, or with `as` into a new VM. */
    restore: (vm: string, id: string, o: RestoreRequest = {}) =>
      this.post<Operation>(`/api/vms/${enc(vm)}/checkpoints/${enc(id)}/restore`, o),
    /** Restores a checkpoint from object storage as a new VM (admins). */
    restoreFromStore: (o: RestoreFromStoreRequest) => this.post<Operation>('/api/checkpoints/restore-from-store', o),
    delete: (vm: string, id: string) => this.del(`/api/vms/${enc(vm)}/checkpoints/${enc(id)}`),
    verify: (vm: string, id?: string) =>
      this.post<Operation>(`/api/vms/${enc(vm)}/checkpoints/verify`, id ? { id } : {}),
    prune: (vm: string, b: Prune) => this.post<PruneResult>(`/api/vms/${enc(vm)}/checkpoints/prune`, b),
    schedule: (vm: string) => this.get<CheckpointSchedule>(`/api/vms/${enc(vm)}/checkpoint-schedule`),
    setSchedule: (vm: string, b: ScheduleSet) =>
      this.put<CheckpointSchedule>(`/api/vms/${enc(vm)}/checkpoint-schedule`, b),
    removeSchedule: (vm: string) => this.del(`/api/vms/${enc(vm)}/checkpoint-schedule`),
  };
}
