// A promise-based client of the QEMU Machine Protocol on a unix socket, after QEMU's docs/interop/qmp-spec.rst
// (quoted below as "the spec"). QEMU serves one client at a time on a `-qmp unix:PATH,server=on` socket: a second
// connection is accepted by the kernel but gets no greeting until the first one closes.
import { createConnection, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { QmpArgs, QmpCommandName, QmpReturn, StatusInfo } from './commands.ts';
import { QmpClosedError, QmpConnectError, QmpError, QmpProtocolError, QmpTimeoutError } from './errors.ts';
import { EventHub, type QmpEvent, type QmpEventListener } from './events.ts';
import { LineSplitter } from './framing.ts';
import { transcriptFor, type Transcript } from './transcript.ts';

const DEFAULT_TIMEOUT_MS = 10_000;
const RETRY_INTERVAL_MS = 50;
/** Connect errors that mean QEMU is still starting: no socket file yet (ENOENT), nobody listening on it yet
 * (ECONNREFUSED), or a full backlog (EAGAIN). */
const RETRYABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN']);

export interface ConnectOptions {
  /** How long the handshake (greeting, then `qmp_capabilities`) may take once connected; default 10 s. */
  timeoutMs?: number;
  /** While the socket is missing or refuses connections (QEMU still starting), retry for up to this long;
   * default 0: a single attempt. */
  retryUntilMs?: number;
  /** Between two attempts while retrying; default 50 ms. */
  retryIntervalMs?: number;
  /** Called once the socket is connected, before the greeting (timings). */
  onConnected?: () => void;
}

export interface ExecuteOptions {
  /** Default 10 s; `Infinity` for none. A timeout does not cancel the command in QEMU. */
  timeoutMs?: number;
}

export interface WaitForEventOptions {
  /** Default 10 s; `Infinity` for none. */
  timeoutMs?: number;
  /** Only an event for which this returns true resolves the wait. */
  filter?: (event: QmpEvent) => boolean;
}

/** QEMU's version, from the greeting. */
export interface QmpVersion {
  major: number;
  minor: number;
  micro: number;
  /** Distribution build, e.g. `Debian 1:7.2+dfsg-7`. */
  package: string;
}

/** The arguments after the command name: optional when the command takes none. */
type ExecuteRest<C extends QmpCommandName> = undefined extends QmpArgs<C>
  ? [args?: QmpArgs<C>, opts?: ExecuteOptions]
  : [args: QmpArgs<C>, opts?: ExecuteOptions];
/** Keeps the names typed in `QmpCommands` out of the untyped `execute` overload, so wrong arguments to them are a
 * type error instead of falling through to it. */
type Untyped<C extends string> = C extends QmpCommandName ? never : C;

interface Call {
  command: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer?: NodeJS.Timeout;
}

export class QmpClient {
  /** Resolves once the socket has closed, whatever the reason (QEMU exited, `close()`, a protocol error). Never
   * rejects. */
  readonly closed: Promise<void>;
  private readonly lines = new LineSplitter();
  private readonly hub = new EventHub();
  /** Commands awaiting their response, by the `id` they were sent with. */
  private readonly calls = new Map<number, Call>();
  private nextId = 1;
  private greeting?: { version: QmpVersion; capabilities: string[] };
  private readonly greeted: Promise<void>;
  private settleGreeting!: { resolve(): void; reject(error: Error): void };
  /** Set once the client starts closing: why, and the error behind it if any. */
  private ending?: { reason: string; cause?: Error };
  private socketError?: Error;

  private constructor(
    private readonly socket: Socket,
    private readonly transcript?: Transcript,
  ) {
    this.greeted = new Promise((resolve, reject) => (this.settleGreeting = { resolve, reject }));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      for (const line of this.lines.push(chunk)) {
        if (this.ending) return;
        this.transcript?.('<-', line);
        this.onLine(line);
      }
    });
    socket.on('error', (e) => (this.socketError ??= e));
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        const detail = this.socketError ? `: ${this.socketError.message}` : '';
        this.shutdown(`QEMU closed the QMP socket (it exited or was killed)${detail}`, this.socketError);
        resolve();
      }),
    );
  }

  /**
   * Connects to QEMU's QMP unix socket, reads the greeting and leaves capabilities negotiation with
   * `qmp_capabilities`; resolves when commands can run. Rejects with QmpConnectError (no socket, or still none
   * after `retryUntilMs`), QmpTimeoutError (no greeting: QEMU hung, or another client holds the socket),
   * QmpProtocolError or QmpClosedError.
   */
  static async connect(path: string, opts: ConnectOptions = {}): Promise<QmpClient> {
    const socket = await openSocket(path, opts.retryUntilMs ?? 0, opts.retryIntervalMs ?? RETRY_INTERVAL_MS);
    const client = new QmpClient(socket, transcriptFor(path));
    opts.onConnected?.();
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const handshake = (async () => {
      await client.greeted;
      // "In this mode only the qmp_capabilities command is allowed to run ... Asynchronous messages are not
      // delivered either" (the spec, "Capabilities Negotiation"). "oob" is enabled where offered: without it QEMU
      // stops reading the socket after each command until it has answered it ("the old behavior"), so commands sent
      // together (a checkpoint's stop, transaction and migrate, inside the VM's pause) each waited a main-loop turn
      // for the next to be read. In-band commands still run and answer in issue order; responses are matched by id.
      const oob = client.greeting?.capabilities.includes('oob');
      await client.execute('qmp_capabilities', oob ? { enable: ['oob'] } : undefined, { timeoutMs: Infinity });
    })();
    try {
      await withTimeout(
        handshake,
        timeoutMs,
        () => new QmpTimeoutError('handshake (greeting and qmp_capabilities)', timeoutMs),
      );
    } catch (e) {
      void client.close();
      throw e;
    }
    return client;
  }

  /** QEMU's version, from the greeting. */
  get version(): QmpVersion {
    return this.greeting!.version;
  }

  /** The capabilities the greeting offered (e.g. `oob`, which this client enables). */
  get capabilities(): readonly string[] {
    return this.greeting!.capabilities;
  }

  /** True once the connection is closed or closing; every call then rejects with QmpClosedError. */
  get isClosed(): boolean {
    return this.ending !== undefined;
  }

  /**
   * Runs a QMP command and resolves with its `return`. Rejects with QmpError (QEMU refused it), QmpTimeoutError,
   * QmpClosedError, or QmpProtocolError. Commands typed in `QmpCommands` get their arguments and return checked;
   * any other command is untyped (`T` is the caller's claim about its return).
   */
  execute<C extends QmpCommandName>(command: C, ...rest: ExecuteRest<C>): Promise<QmpReturn<C>>;
  execute<T = unknown, C extends string = string>(
    command: C & Untyped<C>,
    args?: Record<string, unknown>,
    opts?: ExecuteOptions,
  ): Promise<T>;
  execute(command: string, args?: object, opts: ExecuteOptions = {}): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.ending) return reject(this.closedError(command, command));
      // { "execute": json-string, "arguments": json-object, "id": json-value }, where arguments "is optional when
      // no arguments are required" and the id "will be part of the response" (the spec, "Issuing Commands").
      const id = this.nextId++;
      const line = JSON.stringify(
        args === undefined ? { execute: command, id } : { execute: command, arguments: args, id },
      );
      const call: Call = { command, resolve, reject };
      const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      if (timeoutMs !== Infinity) {
        call.timer = setTimeout(() => {
          this.calls.delete(id);
          reject(new QmpTimeoutError(`command ${command}`, timeoutMs, command));
        }, timeoutMs);
      }
      this.calls.set(id, call);
      this.transcript?.('->', line);
      this.socket.write(`${line}\n`);
    });
  }

  /** `query-status`: the run state (`running`, `paused`, `prelaunch`, `shutdown`, ...). */
  queryStatus(): Promise<StatusInfo> {
    return this.execute('query-status');
  }

  /** Asks QEMU to exit (`quit`) and resolves once it has closed the socket; the timeout (default 10 s) covers both.
   * The socket closing before the reply is read counts as success. */
  async quit(opts: ExecuteOptions = {}): Promise<void> {
    if (this.ending) throw this.closedError('quit', 'quit');
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const exited = this.execute('quit', undefined, { timeoutMs: Infinity }).then(
      () => this.closed,
      (e: unknown) => {
        if (e instanceof QmpClosedError) return this.closed;
        throw e;
      },
    );
    await withTimeout(exited, timeoutMs, () => new QmpTimeoutError('command quit', timeoutMs, 'quit'));
  }

  /** Calls `listener` with every event from now on; returns the function that unsubscribes it. */
  onEvent(listener: QmpEventListener): () => void {
    return this.hub.subscribe(listener);
  }

  /** A new, independent iterator over the events from now on. It ends when the connection closes (after yielding
   * what it had buffered); leaving a `for await` loop early (or `return()`) unsubscribes it. Events wait in its
   * buffer until read, so end an iterator you stop reading. */
  events(): AsyncIterableIterator<QmpEvent> {
    return this.hub.iterate();
  }

  /** Resolves with the next event named `name` (and passing `filter`) raised after this call. Rejects with
   * QmpTimeoutError, or QmpClosedError if the connection closes first. */
  waitForEvent(name: string, opts: WaitForEventOptions = {}): Promise<QmpEvent> {
    const what = `wait for event ${name}`;
    if (this.ending) return Promise.reject(this.closedError(what));
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let unsubscribe = () => {};
    const arrived = new Promise<QmpEvent>((resolve, reject) => {
      unsubscribe = this.hub.subscribe(
        (event) => {
          try {
            if (event.event === name && (opts.filter?.(event) ?? true)) resolve(event);
          } catch (e) {
            reject(e);
          }
        },
        () => reject(this.interruptedError(what)),
      );
    });
    return withTimeout(arrived, timeoutMs, () => new QmpTimeoutError(what, timeoutMs)).finally(unsubscribe);
  }

  /** Closes the connection (QEMU keeps running); calls still waiting reject with QmpClosedError. Resolves with
   * `closed`. */
  close(): Promise<void> {
    this.shutdown('the QMP client was closed');
    return this.closed;
  }

  private onLine(line: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return this.fail(new QmpProtocolError('QEMU sent a line that is not JSON', line));
    }
    // "All interactions transmitted by the Server are json-objects" (the spec, "General Definitions").
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return this.fail(new QmpProtocolError('QEMU sent JSON that is not an object', line));
    }
    const msg = parsed as Record<string, unknown>;
    if (!this.greeting) return this.onGreeting(msg, line);
    if (typeof msg.event === 'string') this.hub.emit(msg as unknown as QmpEvent);
    else if ('return' in msg || 'error' in msg) this.onResponse(msg);
    // Anything else is left alone: clients should be "liberal in what they accept" (the spec, "Compatibility
    // Considerations").
  }

  /** "Right when connected the Server will issue a greeting message": { "QMP": { "version": json-object,
   * "capabilities": json-array } }, its version in the format of query-version (the spec, "Server Greeting"). */
  private onGreeting(msg: Record<string, unknown>, line: string): void {
    const qmp = msg.QMP as
      { version?: { qemu?: Record<string, unknown>; package?: unknown }; capabilities?: unknown } | undefined;
    const v = qmp?.version?.qemu;
    const numbers = [v?.major, v?.minor, v?.micro];
    if (!numbers.every((n) => typeof n === 'number') || !Array.isArray(qmp!.capabilities)) {
      return this.fail(new QmpProtocolError('expected the QMP greeting first', line));
    }
    const [major, minor, micro] = numbers as number[];
    this.greeting = {
      version: { major, minor, micro, package: String(qmp!.version!.package ?? '') },
      capabilities: qmp!.capabilities.map(String),
    };
    this.settleGreeting.resolve();
  }

  /** Settles the command a response answers, found by its id. */
  private onResponse(msg: Record<string, unknown>): void {
    // "Clients should drop all the responses that have an unknown id field" (the spec, "Commands Responses"):
    // that includes the late answer to a command that timed out. An error raised before QEMU could read the id has
    // none (the NOTE under "Error"); it cannot be matched safely, so its command times out.
    const call = typeof msg.id === 'number' ? this.calls.get(msg.id) : undefined;
    if (!call) return;
    this.calls.delete(msg.id as number);
    clearTimeout(call.timer);
    if ('error' in msg) {
      const error = (msg.error ?? {}) as { class?: unknown; desc?: unknown };
      call.reject(new QmpError(call.command, String(error.class), String(error.desc)));
    } else {
      call.resolve(msg.return);
    }
  }

  /** A protocol error leaves the stream unusable: everything waiting rejects with it, and the client closes. */
  private fail(error: QmpProtocolError): void {
    this.shutdown(`the QMP connection was dropped: ${error.message}`, error);
  }

  /** Closes once: destroys the socket, rejects what still waits, ends the event iterators. */
  private shutdown(reason: string, cause?: Error): void {
    if (this.ending) return;
    this.ending = { reason, cause };
    this.socket.destroy();
    this.settleGreeting.reject(this.interruptedError('handshake'));
    for (const call of this.calls.values()) {
      clearTimeout(call.timer);
      call.reject(this.interruptedError(call.command, call.command));
    }
    this.calls.clear();
    this.hub.end();
  }

  /** The error for a call made after the client closed. */
  private closedError(what: string, command?: string): QmpClosedError {
    return new QmpClosedError(`QMP ${what} failed: ${this.ending!.reason}`, command, { cause: this.ending!.cause });
  }

  /** The error for a call cut short by the closing: the protocol error itself if that was the cause. */
  private interruptedError(what: string, command?: string): Error {
    const cause = this.ending!.cause;
    return cause instanceof QmpProtocolError ? cause : this.closedError(what, command);
  }
}

/** Connects to a unix socket, retrying while QEMU has not opened it yet, until `retryUntilMs` has passed. */
async function openSocket(path: string, retryUntilMs: number, intervalMs: number): Promise<Socket> {
  const started = Date.now();
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const socket = createConnection(path);
        socket.once('error', reject);
        socket.once('connect', () => {
          socket.off('error', reject);
          resolve(socket);
        });
      });
    } catch (e) {
      const waited = Date.now() - started;
      if (!RETRYABLE.has((e as NodeJS.ErrnoException).code ?? '') || waited >= retryUntilMs) {
        throw new QmpConnectError(path, e as Error, waited);
      }
      await sleep(Math.min(intervalMs, retryUntilMs - waited));
    }
  }
}

/** `promise`, or a rejection with `onTimeout()` once `ms` have passed (never, for Infinity). */
function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  if (ms === Infinity) return promise;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
