// How many restores run at once. Each holds its page threads, up to ~72 MiB of pages read ahead and its share of the
// store's kept locations while it runs, and competes for the host's cores with the guests it starts: a user who asks
// for many at once waits for their own, and cannot crowd out everyone else's.
import { availableParallelism } from 'node:os';

interface Waiter { user: string; go: () => void }

export class RestoreSlots {
  private readonly byUser = new Map<string, number>();
  private running = 0;
  private readonly queue: Waiter[] = [];

  constructor(
    /** Restores of the whole server at once. */
    readonly total = Math.max(1, Math.min(4, availableParallelism())),
    /** Restores of one user at once. */
    readonly perUser = 1,
  ) {}

  /** Waits for a slot for `user` (in the order asked, skipping users at their limit); `waiting` is called first if
   * the restore must wait, with how many run now. Resolves with the function that gives the slot back. */
  async acquire(user: string, waiting?: (running: number) => void): Promise<() => void> {
    if (!this.free(user)) {
      waiting?.(this.running);
      await new Promise<void>((go) => this.queue.push({ user, go }));
    } else this.take(user);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.running--;
      const n = this.byUser.get(user)! - 1;
      if (n === 0) this.byUser.delete(user);
      else this.byUser.set(user, n);
      this.next();
    };
  }

  private free(user: string): boolean {
    return this.running < this.total && (this.byUser.get(user) ?? 0) < this.perUser;
  }

  private take(user: string): void {
    this.running++;
    this.byUser.set(user, (this.byUser.get(user) ?? 0) + 1);
  }

  /** Starts the first waiters that may run now. */
  private next(): void {
    for (let i = 0; i < this.queue.length && this.running < this.total;) {
      const w = this.queue[i]!;
      if (!this.free(w.user)) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      this.take(w.user);
      w.go();
    }
  }
}
