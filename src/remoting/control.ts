// The control channel between the server and an OpenCL helper (index.ts, helper-main.ts): a unix socketpair the
// server makes, the helper's fd 4, carrying small frames (a u32 little-endian length, then that many bytes of JSON).
// The helper runs guest kernels as native code, so it may write anything here: the server reads at most one frame's
// worth ahead, refuses a frame longer than MAX_CONTROL_FRAME, and accepts only the exact messages below, each only
// when it is due (channel.ts); anything else ends the helper. The guest's requests never travel here: they come on
// the port's socket, which the server dials and passes on the descriptor channel (fd 5, unix.ts), one way.
export type ToHelper =
  /** A connection to QEMU's port socket waits on the descriptor channel. */
  | { t: 'link' }
  /** The server could not connect (QEMU gone, or not yet listening). */
  | { t: 'nolink'; error: string }
  /** Stop running commands (queue them) until release `id`, or for at most maxMs; answered by `held`. */
  | { t: 'hold'; id: number; maxMs: number }
  | { t: 'release'; id: number };

export type FromHelper =
  /** Asks for a (new) connection to QEMU's port; at most one may be outstanding. */
  | { t: 'dial' }
  /** No command runs (queues finished) and none will until release `id`. */
  | { t: 'held'; id: number }
  /** Hold `id` outlived its maxMs and lifted itself: commands run again. */
  | { t: 'unheld'; id: number };

/** The longest frame either side sends (bytes of JSON). */
export const MAX_CONTROL_FRAME = 256;
/** The helper's descriptors: the control channel and the descriptor channel (fd 3 is the window, when there is one). */
export const CONTROL_FD = 4;
export const DESCRIPTOR_FD = 5;

export class ControlError extends Error {}

export function encodeControl(m: ToHelper | FromHelper): Buffer {
  const body = Buffer.from(JSON.stringify(m));
  if (body.length > MAX_CONTROL_FRAME) throw new ControlError(`a control message of ${body.length} bytes`);
  const head = Buffer.alloc(4);
  head.writeUInt32LE(body.length);
  return Buffer.concat([head, body]);
}

/** Splits the control stream into frames' JSON values; throws ControlError on a length no frame may have or bytes that
 * are not JSON. Never holds more than one frame. */
export class ControlReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): unknown[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: unknown[] = [];
    while (this.buf.length >= 4) {
      const n = this.buf.readUInt32LE(0);
      if (n < 2 || n > MAX_CONTROL_FRAME) throw new ControlError(`a control frame of ${n} bytes`);
      if (this.buf.length < 4 + n) break;
      const text = this.buf.subarray(4, 4 + n).toString('utf8');
      this.buf = this.buf.subarray(4 + n);
      try {
        out.push(JSON.parse(text));
      } catch {
        throw new ControlError('a control frame that is not JSON');
      }
    }
    // A partial frame is at most MAX_CONTROL_FRAME + 3 bytes; copy it out of the (possibly large) chunk.
    if (this.buf.length) this.buf = Buffer.from(this.buf);
    return out;
  }
}

const isId = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
const keys = (o: object, ...k: string[]) => {
  const have = Object.keys(o).sort();
  return have.length === k.length && k.sort().every((x, i) => have[i] === x);
};

/** `v` as a message the helper may send, or undefined if it is none (exact fields, nothing more). */
export function fromHelper(v: unknown): FromHelper | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const m = v as Record<string, unknown>;
  if (m.t === 'dial' && keys(m, 't')) return { t: 'dial' };
  if ((m.t === 'held' || m.t === 'unheld') && keys(m, 't', 'id') && isId(m.id)) return { t: m.t, id: m.id };
  return undefined;
}

/** `v` as a message of the server, or undefined (the helper ignores what it does not know). */
export function toHelper(v: unknown): ToHelper | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const m = v as Record<string, unknown>;
  if (m.t === 'link') return { t: 'link' };
  if (m.t === 'nolink') return { t: 'nolink', error: String(m.error) };
  if (m.t === 'hold' && isId(m.id) && typeof m.maxMs === 'number' && m.maxMs > 0) {
    return { t: 'hold', id: m.id, maxMs: m.maxMs };
  }
  if (m.t === 'release' && isId(m.id)) return { t: 'release', id: m.id };
  return undefined;
}
