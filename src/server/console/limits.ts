// How many console WebSockets (SPICE channels and serial viewers) may be open: per user and in all. A SPICE session
// takes one WebSocket per channel (main, display, inputs, cursor, ports: 4-8), so a user's limit leaves room for a
// few consoles open at once; past it, the upgrade is refused with 429 before any WebSocket exists.
import { OrielError } from '../../errors.ts';

export const MAX_CONSOLES_PER_USER = 64;
export const MAX_CONSOLES = 1024;

export class ConsoleLimits {
  private readonly byUser = new Map<string, number>();
  private total = 0;

  constructor(readonly perUser = MAX_CONSOLES_PER_USER, readonly overall = MAX_CONSOLES) {}

  /** Counts one more connection of `userId`, or throws 429. The returned function releases it (once). */
  acquire(userId: string): () => void {
    const n = this.byUser.get(userId) ?? 0;
    if (n >= this.perUser) throw new OrielError(429, `too many console connections open for this user (${this.perUser})`, 'too_many');
    if (this.total >= this.overall) throw new OrielError(429, `too many console connections open on this server (${this.overall})`, 'too_many');
    this.byUser.set(userId, n + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.byUser.get(userId) ?? 1) - 1;
      if (left > 0) this.byUser.set(userId, left);
      else this.byUser.delete(userId);
    };
  }
}
