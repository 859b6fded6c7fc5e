// One hold of one VM's OpenCL commands (index.ts: hold), on whichever helper runs, or starts, while it is on. The
// helper answers `held` once no command runs; it lifts a hold itself after its maxMs (`unheld`). Either the helper
// did not stop in time (a long kernel) or the hold lifted itself before the release: then the capture goes on, and
// the release says why the window's bytes may be inexact.
import type { HelperChannel } from './channel.ts';

export const STILL_RUNNING = "OpenCL commands were still running: the window's bytes may be inexact";

export class Hold {
  private readonly on: { channel: HelperChannel; id: number; off: () => void }[] = [];
  private held = false;
  private released = false;
  private inexact?: string;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly maxMs: number) {}

  /** Holds the commands of the helper behind `channel` too. */
  attach(channel: HelperChannel): void {
    if (this.released || !channel.open) return;
    const id = channel.hold(this.maxMs);
    const off = channel.listen((m) => {
      if (m.t === 'unheld' && m.id === id) {
        this.inexact ??= `the OpenCL hold lifted itself after ${this.maxMs / 1000} s: OpenCL commands ran during the `
          + "capture, the window's bytes may be inexact";
      }
      if (m.t === 'closed' || (m.t === 'held' && m.id === id)) {
        this.held = true; // a helper that ended runs nothing
        for (const w of [...this.waiters]) w();
      }
    });
    this.on.push({ channel, id, off });
  }

  /** Whether the helper acknowledged within `ms`. */
  acked(ms: number): Promise<boolean> {
    if (this.held) return Promise.resolve(true);
    return new Promise((ok) => {
      const w = () => {
        clearTimeout(timer);
        this.waiters.delete(w);
        ok(true);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        ok(this.held);
      }, ms);
      this.waiters.add(w);
    });
  }

  /** The helper did not stop in time: the capture goes on, its window marked inexact. */
  stillRunning(): void {
    this.inexact ??= STILL_RUNNING;
  }

  /** Lifts the hold; returns why the window's bytes may be inexact, if they may. */
  release(): string | undefined {
    if (!this.released) {
      this.released = true;
      for (const { channel, id, off } of this.on) {
        off();
        channel.release(id);
      }
    }
    return this.inexact;
  }
}
