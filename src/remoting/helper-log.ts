// An OpenCL helper's log (opencl.log in its VM's folder), written by the server: the helper's stdout and stderr come
// through pipes (a helper runs guest kernels: it may print without end), and the log is kept under a cap like the
// serial console's: past `maxBytes` it becomes opencl.log.1 (replacing the one before) and a new one starts. A helper
// that fills the cap is not read for a second after each rotation (it waits on its pipe), so it cannot keep the
// server busy writing either. On disk: at most twice the cap.
import { closeSync, fstatSync, openSync, renameSync, writeSync } from 'node:fs';
import type { Readable } from 'node:stream';

export const DEFAULT_HELPER_LOG_MAX_BYTES = 8 << 20;
const PAUSE_AFTER_ROTATION_MS = 1000;

export class HelperLog {
  private fd: number;
  private size: number;
  private readonly streams = new Set<Readable>();
  /** Counts rotations: a pause ends when the timer of the latest rotation fires. */
  private rotations = 0;

  constructor(readonly path: string, private readonly maxBytes = DEFAULT_HELPER_LOG_MAX_BYTES) {
    this.fd = openSync(path, 'a', 0o600);
    this.size = fstatSync(this.fd).size;
  }

  /** A line of the server's own (what it started, why it killed the helper). */
  note(line: string): void {
    this.write(Buffer.from(`${line}\n`));
  }

  write(b: Buffer): void {
    if (this.fd < 0) return;
    if (this.size + b.length > this.maxBytes && this.size > 0) this.rotate();
    const part = b.length > this.maxBytes ? b.subarray(0, this.maxBytes) : b;
    writeSync(this.fd, part);
    this.size += part.length;
  }

  private rotate(): void {
    closeSync(this.fd);
    renameSync(this.path, `${this.path}.1`);
    this.fd = openSync(this.path, 'a', 0o600);
    this.size = 0;
    const rotation = ++this.rotations;
    for (const s of this.streams) s.pause();
    // Not "Date.now() >= a deadline": a timer counts on the loop's monotonic clock, in whole milliseconds, and about
    // one in twenty fires a millisecond before Date.now() reaches its deadline; the streams then stayed paused for
    // good, and a helper writing to its log blocked forever (control.test.ts's spewing helper, once in CI).
    setTimeout(() => {
      if (rotation === this.rotations) for (const s of this.streams) s.resume();
    }, PAUSE_AFTER_ROTATION_MS).unref();
  }

  /** Copies what `s` (a helper's stdout or stderr) says into the log. */
  follow(s: Readable | null): void {
    if (!s) return;
    this.streams.add(s);
    s.on('data', (b: Buffer) => this.write(b));
    s.on('error', () => undefined);
    s.on('close', () => this.streams.delete(s));
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }
}
