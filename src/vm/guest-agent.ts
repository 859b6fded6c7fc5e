// A client for qemu-guest-agent (QGA), the host side of the guest's org.qemu.guest_agent.0 virtio-serial port,
// which QEMU exposes as a unix socket (qemu-args.ts). Images with exec: 'guest-agent' run `oriel vm exec` through it.
//
// The protocol is QMP-like JSON, one request at a time, but the channel has no session: bytes written while no
// agent runs in the guest wait in the port and are read, and answered, whenever one starts; an answer to a request
// that timed out arrives later, in front of the next one's. So every request is preceded by a synchronisation:
//   host:  0xFF {"execute":"guest-sync-delimited","arguments":{"id":N}}  (0xFF makes the agent drop partial input)
//   agent: 0xFF {"return":N}                                             (0xFF: whatever came before is stale)
// with a fresh random N; answers carrying any other id, and anything before ours, are dropped. Then the request is
// sent and the next answer is its own.
import { randomInt } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { JsonSplitter } from './json-splitter.ts';

export type GuestAgentErrorCode =
  /** The socket is missing or refuses connections (QEMU not running, or a VM without the port). */
  | 'unavailable'
  /** No answer in time: no agent runs in the guest (yet), or the guest is too busy. */
  | 'timeout'
  /** The connection closed while waiting. */
  | 'closed'
  /** The agent answered with an error (see agentClass). */
  | 'agent-error'
  /** A command started by exec() did not finish in time (it was killed). */
  | 'exec-timeout';

export class GuestAgentError extends Error {
  override name = 'GuestAgentError';
  constructor(message: string, readonly code: GuestAgentErrorCode, readonly agentClass?: string) {
    super(message);
  }
}

export interface RequestOptions {
  /** For the synchronisation and the answer together. Default 10 s. */
  timeoutMs?: number;
}

export interface GuestExecOptions {
  /** The command's whole environment (the agent passes it no other); default: the agent's own. */
  env?: Record<string, string>;
  /** Standard input (default: /dev/null). */
  input?: string | Buffer;
  /** Until the command has exited. Default 60 s; on expiry it is killed and exec() rejects with 'exec-timeout'. */
  timeoutMs?: number;
}

export interface GuestExecResult {
  /** The exit status, or 128 + the signal number for a command killed by a signal (as a shell reports it). */
  exitCode: number;
  signal?: number;
  stdout: string;
  stderr: string;
  /** The agent keeps at most 16 MiB of each output. */
  truncated?: boolean;
}

interface ExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  'out-data'?: string;
  'err-data'?: string;
  'out-truncated'?: boolean;
  'err-truncated'?: boolean;
}

type Waiter =
  | { kind: 'sync'; id: number; resolve(): void; reject(e: Error): void }
  | { kind: 'reply'; resolve(v: unknown): void; reject(e: Error): void };

const DELIM = 0xff;
const FILE_CHUNK = 1 << 20;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export class GuestAgent {
  private socket?: Socket;
  private connecting?: Promise<Socket>;
  private readonly splitter = new JsonSplitter((text) => {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return; // garbage that happened to balance its braces
    }
    this.deliver(msg as Record<string, unknown>);
  });
  private waiter?: Waiter;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly socketPath: string) {}

  /**
   * Sends one command and returns its `return` value. Requests queue: one at a time on the channel. Rejects with a
   * GuestAgentError ('timeout' when no agent answers, 'agent-error' when it refuses the command).
   */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: RequestOptions = {}): Promise<T> {
    const run = this.queue.then(() => this.request(command, args, opts.timeoutMs ?? 10_000)) as Promise<T>;
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Resolves once the agent answers (retrying while the guest boots), or rejects after timeoutMs. */
  async waitUntilAnswering(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      try {
        await this.execute('guest-ping', undefined, { timeoutMs: Math.max(1, Math.min(5000, left)) });
        return;
      } catch (e) {
        const code = (e as GuestAgentError).code;
        if (Date.now() >= deadline || !['timeout', 'unavailable', 'closed'].includes(code)) throw e;
        if (code !== 'timeout') await sleep(250);
      }
    }
  }

  /** Runs argv[0] (searched in the agent's PATH) with the other words as its arguments, and waits for it to exit. */
  async exec(argv: string[], opts: GuestExecOptions = {}): Promise<GuestExecResult> {
    if (argv.length === 0) throw new Error('exec: empty command');
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    const left = () => Math.max(1000, deadline - Date.now());
    const { pid } = await this.execute<{ pid: number }>('guest-exec', {
      path: argv[0],
      arg: argv.slice(1),
      ...(opts.env ? { env: envList(opts.env) } : {}),
      ...(opts.input !== undefined ? { 'input-data': Buffer.from(opts.input).toString('base64') } : {}),
      'capture-output': true,
    }, { timeoutMs: left() });
    // The agent reports exit only when asked: poll, quickly at first (most commands take milliseconds).
    let interval = 20;
    for (;;) {
      const st = await this.execute<ExecStatus>('guest-exec-status', { pid }, { timeoutMs: left() });
      if (st.exited) {
        const stdout = decode(st['out-data']), stderr = decode(st['err-data']);
        const truncated = st['out-truncated'] || st['err-truncated'] ? true : undefined;
        if (st.exitcode !== undefined)
          return { exitCode: st.exitcode, stdout, stderr, ...(truncated ? { truncated } : {}) };
        return {
          exitCode: 128 + (st.signal ?? 0),
          signal: st.signal,
          stdout,
          stderr,
          ...(truncated ? { truncated } : {}),
        };
      }
      if (Date.now() >= deadline) {
        // guest-exec has no timeout of its own: end the process (its children may stay), and reap it.
        await this.execute('guest-exec', { path: 'kill', arg: ['-KILL', String(pid)] }, { timeoutMs: 5000 }).catch(
          () => undefined,
        );
        await sleep(200);
        await this.execute('guest-exec-status', { pid }, { timeoutMs: 5000 }).catch(() => undefined);
        throw new GuestAgentError(
          `the command did not finish within ${timeoutMs} ms in the guest (it was killed): ${summary(argv)}`,
          'exec-timeout',
        );
      }
      await sleep(Math.min(interval, Math.max(0, deadline - Date.now())));
      interval = Math.min(Math.round(interval * 1.5), 250);
    }
  }

  // ---- files (guest-file-*) ----

  /** Opens a file in the guest (fopen modes: r, w, a, r+ ...); returns the agent's handle. */
  fileOpen(path: string, mode = 'r'): Promise<number> {
    return this.execute<number>('guest-file-open', { path, mode });
  }

  /** Reads up to `count` bytes at the handle's position. */
  async fileRead(handle: number, count = FILE_CHUNK): Promise<{ data: Buffer; eof: boolean }> {
    const r = await this.execute<{ count: number; 'buf-b64': string; eof: boolean }>(
      'guest-file-read',
      { handle, count },
      { timeoutMs: 30_000 },
    );
    return { data: Buffer.from(r['buf-b64'], 'base64'), eof: r.eof };
  }

  async fileWrite(handle: number, data: Buffer): Promise<number> {
    const r = await this.execute<{ count: number }>(
      'guest-file-write',
      { handle, 'buf-b64': data.toString('base64') },
      { timeoutMs: 30_000 },
    );
    return r.count;
  }

  async fileClose(handle: number): Promise<void> {
    await this.execute('guest-file-close', { handle });
  }

  /** A whole file of the guest (at most maxBytes, default 64 MiB). */
  async readFile(path: string, maxBytes = 64 << 20): Promise<Buffer> {
    const h = await this.fileOpen(path, 'r');
    try {
      const parts: Buffer[] = [];
      let size = 0;
      for (;;) {
        const { data, eof } = await this.fileRead(h);
        parts.push(data);
        size += data.length;
        if (size > maxBytes) throw new Error(`${path} in the guest is larger than ${maxBytes} bytes`);
        if (eof || data.length === 0) return Buffer.concat(parts);
      }
    } finally {
      await this.fileClose(h).catch(() => undefined);
    }
  }

  /** Writes (replaces) a file in the guest. */
  async writeFile(path: string, data: string | Buffer): Promise<void> {
    const bytes = Buffer.from(data);
    const h = await this.fileOpen(path, 'w');
    try {
      for (let off = 0; off < bytes.length; off += FILE_CHUNK) {
        const chunk = bytes.subarray(off, off + FILE_CHUNK);
        const n = await this.fileWrite(h, chunk);
        if (n !== chunk.length) throw new Error(`short write to ${path} in the guest (${n} of ${chunk.length} bytes)`);
      }
    } finally {
      await this.fileClose(h).catch(() => undefined);
    }
  }

  /** Closes the connection; calls waiting fail with 'closed'. The object can be used again (it reconnects). */
  close(): void {
    this.drop(new GuestAgentError('the guest agent connection was closed', 'closed'));
  }

  // ---- internals ----

  private async request(
    command: string,
    args: Record<string, unknown> | undefined,
    timeoutMs: number,
  ): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    const socket = await this.connect(deadline);
    const id = randomInt(1, 2 ** 31 - 1);
    const expire = (what: string) =>
      new GuestAgentError(
        `the guest agent did not answer ${what} within ${timeoutMs} ms (is qemu-guest-agent running in the guest?)`,
        'timeout',
      );
    await this.wait({ kind: 'sync', id }, deadline, () => expire(`'${command}' (synchronisation)`), () => {
      socket.write(
        Buffer.concat([
          Buffer.from([DELIM]),
          Buffer.from(JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id } }) + '\n'),
        ]),
      );
    });
    const answer = (await this.wait({ kind: 'reply' }, deadline, () => expire(`'${command}'`), () => {
      socket.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    })) as { return?: unknown; error?: { class?: string; desc?: string } };
    if (answer.error) {
      throw new GuestAgentError(
        `the guest agent refused '${command}': ${answer.error.desc ?? JSON.stringify(answer.error)}`,
        'agent-error',
        answer.error.class,
      );
    }
    return answer.return;
  }

  private wait(
    w: { kind: 'sync'; id: number } | { kind: 'reply' },
    deadline: number,
    onTimeout: () => Error,
    send: () => void,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.waiter === waiter) this.waiter = undefined;
        reject(onTimeout());
      }, Math.max(0, deadline - Date.now()));
      const waiter = {
        ...w,
        resolve: (v?: unknown) => (clearTimeout(timer), resolve(v)),
        reject: (e: Error) => (clearTimeout(timer), reject(e)),
      } as Waiter;
      this.waiter = waiter;
      send();
    });
  }

  private connect(deadline: number): Promise<Socket> {
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    this.connecting ??= new Promise<Socket>((resolve, reject) => {
      const attempt = () => {
        const s = netConnect(this.socketPath);
        s.once('connect', () => {
          s.removeAllListeners('error');
          s.on('error', () => {}); // 'close' follows
          s.on('data', (d: Buffer) => this.splitter.push(d));
          s.on('close', () => {
            if (this.socket === s)
              this.drop(new GuestAgentError('the guest agent connection closed (QEMU stopped?)', 'closed'));
          });
          this.socket = s;
          this.splitter.reset();
          resolve(s);
        });
        s.once('error', (e: NodeJS.ErrnoException) => {
          s.destroy();
          // QEMU creates the socket as it starts: before that there is none, or nobody listening yet.
          if ((e.code === 'ENOENT' || e.code === 'ECONNREFUSED') && Date.now() + 100 < deadline)
            setTimeout(attempt, 100);
          else
            reject(
              new GuestAgentError(
                `cannot connect to the guest agent socket ${this.socketPath}: ${e.message}`,
                'unavailable',
              ),
            );
        });
      };
      attempt();
    }).finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private drop(err: GuestAgentError): void {
    const s = this.socket;
    this.socket = undefined;
    s?.destroy();
    this.splitter.reset();
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(err);
  }

  private deliver(msg: Record<string, unknown>): void {
    const w = this.waiter;
    if (!w) return; // an answer nobody waits for any more
    if (w.kind === 'sync') {
      if (msg.return === w.id) {
        this.waiter = undefined;
        w.resolve();
      }
      return; // a stale answer (an earlier sync, or a request that timed out)
    }
    this.waiter = undefined;
    w.resolve(msg);
  }
}

function envList(env: Record<string, string>): string[] {
  const e = { PATH: DEFAULT_PATH, ...env };
  return Object.entries(e).map(([k, v]) => `${k}=${v}`);
}

const decode = (b64?: string) => (b64 ? Buffer.from(b64, 'base64').toString('utf8') : '');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function summary(argv: string[]): string {
  const s = argv.join(' ');
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}
