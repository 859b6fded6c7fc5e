// Errors of the Node SPICE client, in a module of their own so that catching them loads no transport (ws).

/** The server refused the WebSocket upgrade (401, 403, 404, 409 …); `message` is its explanation. */
export class ConsoleRefusedError extends Error {
  override readonly name = 'ConsoleRefusedError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
