// The messages between the server and an OpenCL helper on its IPC channel (index.ts, helper-main.ts). The guest's
// requests never travel here: they come on the port's socket, which the server dials and hands over (`link`).
export type ToHelper =
  /** A connection to QEMU's port socket comes with this message (its handle). */
  | { t: 'link' }
  /** The server could not connect (QEMU gone, or not yet listening). */
  | { t: 'nolink'; error: string }
  /** Stop running commands (queue them) until a release, or for at most maxMs; answered by `held`. */
  | { t: 'hold'; maxMs: number }
  | { t: 'release' };

export type FromHelper =
  /** Asks for a (new) connection to QEMU's port. */
  | { t: 'dial' }
  /** No command runs (queues finished) and none will until the release. */
  | { t: 'held' };
