// The host side of the command channel of guests whose image has exec: 'serial-shell' (the tiny guest's init
// script, src/vm/images/tiny-init.sh, is the other side). It runs on the guest's second serial port, which QEMU
// exposes as a unix socket. One request at a time:
//   host:  P <id>                                          guest:  O <id>
//   host:  X <id> <timeout s> <script len> <stdin len>, then the script and stdin, gzip+base64, exactly that long
//   guest: B <id> / stdout b64 lines / S <id> / stderr b64 lines / E <id> <status>
// Everything is gzip-compressed (the serial line carries ~130 KB/s) then base64-encoded. Base64 lines hold no space,
// so no output can pass for a marker, and every id carries a random per-connection prefix, so anything else on the
// line (boot noise, the tail of an answer from an earlier connection, the late answer to a request that timed out)
// is recognised and ignored.
import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { gunzipSync, gzipSync } from 'node:zlib';

export interface ExecOptions {
  /** Default 60 s. The guest also kills the command after this (rounded up to whole seconds). */
  timeoutMs?: number;
  /** Standard input of the command (default: /dev/null). */
  input?: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

// The guest's tty buffers at most 640 KiB of unread input (the kernel's TTYB_DEFAULT_MEM_LIMIT) and the serial
// line has no flow control, so a longer request could lose bytes when it waits behind a command still running.
const MAX_REQUEST_BYTES = 512 * 1024;
/**
 * Output a command may return, compressed (base64 as it comes) and once unpacked: the guest is not trusted (a root
 * shell in one's own VM can answer with endless lines or a gzip bomb), so both are bounded.
 */
export const MAX_OUTPUT_BYTES = 16 << 20;

/** A command's output over MAX_OUTPUT_BYTES (packed or unpacked): refused, never held. */
export class OutputTooLargeError extends Error {
  constructor() {
    super(`the command's output is over ${MAX_OUTPUT_BYTES >> 20} MiB: refused`);
  }
}
const PING_INTERVAL_MS = 500;

/** Quotes a word for a POSIX shell: inside single quotes nothing is special but the quote itself. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The shell text that runs argv as one command, every word taken literally. */
export function commandScript(argv: string[]): string {
  if (argv.length === 0) throw new Error('exec: empty command');
  return argv.map(shellQuote).join(' ') + '\n';
}

interface Request {
  id: string;
  resolve(r: ExecResult): void;
  reject(e: Error): void;
  stdout: string[];
  stderr: string[];
  /** Which output the base64 lines belong to: none until 'B <id>' arrives. */
  into?: string[];
  /** Base64 bytes received for this request so far. */
  received?: number;
}

export class GuestShell {
  private socket?: Socket;
  private readonly prefix = randomBytes(4).toString('hex');
  private seq = 0;
  private partial = '';
  private active?: Request;
  private queue: Promise<unknown> = Promise.resolve();
  private closed?: Error;
  /** Set while connect() waits for the first pong. */
  private connecting?: { resolve(): void; reject(e: Error): void };

  constructor(private readonly socketPath: string) {}

  /**
   * Connects to the socket and waits until the guest's command server answers a ping. On failure the connection
   * is closed for good: retry with a new GuestShell.
   */
  async connect(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const socket = await this.open(deadline);
    this.socket = socket;
    socket.on('data', (d: Buffer) => this.receive(d));
    socket.on('error', () => {}); // 'close' follows and reports it
    socket.on('close', () =>
      this.fail(new Error(`the guest command shell (${this.socketPath}) closed the connection`)),
    );
    // A ping sent before the guest's server set its port up can be lost, so ping until one is answered.
    let pinger: NodeJS.Timeout | undefined;
    let expiry: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        this.connecting = { resolve, reject };
        expiry = setTimeout(
          () =>
            this.fail(new Error(`the guest command shell (${this.socketPath}) did not answer within ${timeoutMs} ms`)),
          Math.max(0, deadline - Date.now()),
        );
        const ping = () => {
          this.write(`\nP ${this.nextId()}\n`);
          pinger = setTimeout(ping, PING_INTERVAL_MS);
        };
        ping();
      });
    } finally {
      clearTimeout(pinger);
      clearTimeout(expiry);
      this.connecting = undefined;
    }
  }

  /** Runs argv as a command in the guest (no second shell: every word is passed as is). */
  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return this.execScript(commandScript(argv), opts);
  }

  /** Runs shell text in the guest with sh. */
  execScript(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const run = this.queue.then(() => this.request(script, opts));
    this.queue = run.catch(() => {});
    return run;
  }

  close(): void {
    this.fail(new Error('the guest command shell was closed'));
  }

  private open(deadline: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        const s = netConnect(this.socketPath);
        s.once('connect', () => {
          s.removeAllListeners('error');
          resolve(s);
        });
        s.once('error', (e: NodeJS.ErrnoException) => {
          s.destroy();
          // QEMU creates the socket when it starts: before that there is none, or nobody listening yet.
          if ((e.code === 'ENOENT' || e.code === 'ECONNREFUSED') && Date.now() < deadline) setTimeout(attempt, 100);
          else reject(new Error(`cannot connect to the guest command shell (${this.socketPath}): ${e.message}`));
        });
      };
      attempt();
    });
  }

  private nextId(): string {
    return `${this.prefix}.${++this.seq}`;
  }

  private write(text: string): void {
    this.socket?.write(text, 'latin1');
  }

  private request(script: string, opts: ExecOptions): Promise<ExecResult> {
    if (this.closed) return Promise.reject(this.closed);
    if (!this.socket)
      return Promise.reject(new Error('the guest command shell is not connected (call connect() first)'));
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const id = this.nextId();
    const body = encode(script);
    const stdin = opts.input ? encode(opts.input) : ''; // none: the guest gives /dev/null
    // The leading newline ends any partial line left in the guest's buffer by an earlier connection.
    const request = `\nX ${id} ${Math.ceil(timeoutMs / 1000)} ${body.length} ${stdin.length}\n${body}${stdin}`;
    if (request.length > MAX_REQUEST_BYTES) {
      return Promise.reject(
        new Error(
          `exec: the command and its input take ${request.length} bytes encoded; the serial channel takes at most ${MAX_REQUEST_BYTES}`,
        ),
      );
    }
    return new Promise<ExecResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.active?.id === id) this.active = undefined; // its answer, if it ever comes, is ignored
        reject(new Error(`the command did not finish within ${timeoutMs} ms in the guest: ${summary(script)}`));
      }, timeoutMs);
      this.active = {
        id,
        stdout: [],
        stderr: [],
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      this.write(request);
    });
  }

  private receive(chunk: Buffer): void {
    const lines = (this.partial + chunk.toString('latin1')).split('\n');
    this.partial = lines.pop()!;
    // A guest printing garbage with no newline must not grow the buffer forever (base64 lines are 76 bytes).
    if (this.partial.length > 64 * 1024) this.partial = '';
    for (const raw of lines) this.line(raw.replace(/\r$/, ''));
  }

  private line(line: string): void {
    const m = /^([OBSE]) (\S+)(?: (\d+))?$/.exec(line);
    const req = this.active;
    if (!m) {
      if (req?.into && /^[A-Za-z0-9+/=]+$/.test(line)) {
        req.received = (req.received ?? 0) + line.length;
        if (req.received > MAX_OUTPUT_BYTES) {
          this.active = undefined; // the rest of its answer is ignored
          req.reject(new OutputTooLargeError());
          return;
        }
        req.into.push(line);
      }
      return;
    }
    const [, kind, id, status] = m;
    if (kind === 'O') {
      if (id!.startsWith(this.prefix + '.')) this.connecting?.resolve();
      return;
    }
    if (!req || id !== req.id) {
      if (req) req.into = undefined;
      return;
    }
    if (kind === 'B') req.into = req.stdout;
    else if (kind === 'S') req.into = req.stderr;
    else if (status !== undefined) {
      this.active = undefined;
      try {
        req.resolve({ stdout: decode(req.stdout), stderr: decode(req.stderr), exitCode: Number(status) });
      } catch (e) {
        const over = (e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError;
        req.reject(over ? new OutputTooLargeError()
          : new Error(`garbled answer from the guest command shell: ${(e as Error).message}`));
      }
    }
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.closed = err;
    this.socket?.destroy();
    this.connecting?.reject(err);
    const req = this.active;
    this.active = undefined;
    req?.reject(err);
  }
}

const encode = (text: string) => gzipSync(text).toString('base64');
const decode = (lines: string[]) =>
  gunzipSync(Buffer.from(lines.join(''), 'base64'), { maxOutputLength: MAX_OUTPUT_BYTES }).toString('utf8');

function summary(script: string): string {
  const s = script.trim().replace(/\s+/g, ' ');
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}
