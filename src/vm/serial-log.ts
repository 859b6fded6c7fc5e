// The guest console's log (serial.log) is written by QEMU (the serial chardev's logfile, opened O_APPEND with
// logappend=on), as fast as the guest prints: a guest flooding its console must not fill the host disk. So it is
// kept under a cap: once serial.log is over `maxBytes`, it is copied to serial.log.1 (replacing the one before) and
// emptied in place (QEMU's O_APPEND writes then go on at its new, zero, end). On disk: at most about twice the cap,
// plus what the guest writes between two checks. Bytes the guest writes between the copy and the truncation are
// lost (a few microseconds' worth). Readers use `lastBytes`, which reads across serial.log.1 and serial.log.
import { closeSync, copyFileSync, existsSync, fstatSync, openSync, readSync, statSync, truncateSync, writeSync } from 'node:fs';

export const DEFAULT_SERIAL_LOG_MAX_BYTES = 8 << 20;
/** How often running VMs' serial logs are checked. */
export const SERIAL_LOG_CHECK_MS = 500;

/** The rotated predecessor of a log file. */
export const previousLog = (path: string): string => `${path}.1`;

/** Rotates `path` when it is over `maxBytes`; true when it did. */
export function capLog(path: string, maxBytes: number): boolean {
  let size: number;
  try { size = statSync(path).size; } catch { return false; }
  if (size <= maxBytes) return false;
  const prev = previousLog(path);
  copyFileSync(path, prev);
  // What QEMU wrote during the copy goes to the end of the copy too, then the file is emptied at once.
  const src = openSync(path, 'r');
  const dst = openSync(prev, 'a');
  try {
    let pos = fstatSync(dst).size;
    const buf = Buffer.alloc(64 * 1024);
    for (let n; (n = readSync(src, buf, 0, buf.length, pos)) > 0; pos += n) writeSync(dst, buf, 0, n);
    truncateSync(path, 0);
  } finally {
    closeSync(src);
    closeSync(dst);
  }
  return true;
}

/** Whether this boot's serial log shows `marker` in its last 256 KiB (across a rotation): an image's ready marker. */
export function serialLogShows(path: string, marker: string): boolean {
  return lastBytes(path, 256 * 1024).includes(marker);
}

/** The last `n` bytes of a log, across its rotated predecessor (`path`.1) and `path` itself. */
export function lastBytes(path: string, n: number): Buffer {
  const part = (p: string, want: number): Buffer => {
    if (want <= 0 || !existsSync(p)) return Buffer.alloc(0);
    const fd = openSync(p, 'r');
    try {
      const size = fstatSync(fd).size;
      const len = Math.min(size, want);
      const buf = Buffer.alloc(len);
      const got = readSync(fd, buf, 0, len, size - len);
      return buf.subarray(0, got);
    } finally {
      closeSync(fd);
    }
  };
  const cur = part(path, n);
  if (cur.length >= n) return cur;
  const before = part(previousLog(path), n - cur.length);
  return before.length ? Buffer.concat([before, cur]) : cur;
}

/** Checks the serial logs of running VMs every SERIAL_LOG_CHECK_MS, rotating those over the cap. */
export class SerialLogKeeper {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly maxBytes: number,
    private readonly logs: () => string[],
    private readonly onError: (path: string, e: Error) => void,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.check(), SERIAL_LOG_CHECK_MS).unref();
  }

  check(): void {
    for (const p of this.logs()) {
      try { capLog(p, this.maxBytes); } catch (e) { this.onError(p, e as Error); }
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** The last `lines` lines of a (possibly large) log file, reading only its end (across a rotated predecessor, so the
 * tail of a log just emptied by its cap is still there). */
export function tail(path: string, lines = 20, maxBytes = 64 * 1024): string {
  const buf = lastBytes(path, maxBytes);
  return buf.toString('utf8').split('\n').filter((l, i, a) => l !== '' || i < a.length - 1).slice(-lines).join('\n');
}
