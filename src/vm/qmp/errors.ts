// The errors a QMP client raises. Each names what failed, so a message is useful on its own in a log or an API reply.

/** QEMU answered a command with `{"error": {"class": ..., "desc": ...}}` (qmp-spec.rst, "Error"). */
export class QmpError extends Error {
  override name = 'QmpError';

  constructor(
    /** The command QEMU refused. */
    readonly command: string,
    /** The error class, e.g. `GenericError`, `CommandNotFound`, `DeviceNotFound`. */
    readonly errorClass: string,
    /** QEMU's human-readable message; the spec says clients should not parse it. */
    readonly desc: string,
  ) {
    super(`QMP ${command} failed: ${errorClass}: ${desc}`);
  }
}

/** The connection is gone (QEMU exited, the socket closed, or `close()` was called) before or while a call ran. */
export class QmpClosedError extends Error {
  override name = 'QmpClosedError';

  constructor(
    message: string,
    /** The command (or other call) that could not complete; undefined for the handshake. */
    readonly command?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A command, the handshake, or a wait for an event took longer than its timeout. */
export class QmpTimeoutError extends Error {
  override name = 'QmpTimeoutError';

  constructor(
    /** What timed out, e.g. `command query-status`, `wait for event STOP`, `handshake`. */
    readonly what: string,
    readonly timeoutMs: number,
    /** The command that timed out, when it was a command. QEMU may still run it: a timeout cancels nothing. */
    readonly command?: string,
  ) {
    super(`QMP ${what} timed out after ${timeoutMs} ms`);
  }
}

/** QEMU sent something that is not QMP (a line that is not a JSON object, or no greeting first); the client closes. */
export class QmpProtocolError extends Error {
  override name = 'QmpProtocolError';
  /** The offending line, cut to 200 characters. */
  readonly line?: string;

  constructor(message: string, line?: string) {
    const shown = line !== undefined && line.length > 200 ? `${line.slice(0, 200)}…` : line;
    super(shown === undefined ? message : `${message}: ${shown}`);
    this.line = shown;
  }
}

/** The unix socket could not be connected to (within `retryUntilMs`, when QEMU had not created it yet). */
export class QmpConnectError extends Error {
  override name = 'QmpConnectError';
  /** The system error code of the last attempt, e.g. `ENOENT`, `ECONNREFUSED`, `EACCES`. */
  readonly code?: string;

  constructor(
    readonly path: string,
    cause: Error,
    retriedMs: number,
  ) {
    super(
      `cannot connect to the QMP socket ${path}: ${cause.message}${retriedMs > 0 ? ` (retried for ${retriedMs} ms)` : ''}`,
      { cause },
    );
    this.code = (cause as NodeJS.ErrnoException).code;
  }
}
