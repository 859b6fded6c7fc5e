// Guessing passwords is made slow: failed sign-ins are counted per account and per client address, and past a few
// the next attempt must wait (doubling each time, at most 15 minutes), answered 429 with Retry-After. And a flood of
// sign-ins cannot hold the CPU: at most SCRYPT_SLOTS password checks run at once (scrypt costs ~50-100 ms of CPU and
// 32 MiB each), with a bounded queue behind them.
import { OrielError } from '../../errors.ts';

/** Failures allowed before waiting starts. */
const FREE_FAILURES = 5;
const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 15 * 60_000;
/** A key's failures are forgotten this long after its last one. */
const FORGET_MS = 60 * 60_000;
/** Keys remembered at most (oldest dropped first): memory stays bounded under a spray of names and addresses. */
const MAX_KEYS = 100_000;
export const SCRYPT_SLOTS = 2;
const MAX_QUEUE = 64;

interface Failures { count: number; last: number; until: number }

export class LoginThrottle {
  private readonly failures = new Map<string, Failures>();
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  /** Throws 429 while `account` or `address` must wait. */
  check(account: string, address: string): void {
    const t = this.now();
    for (const key of [`u:${account}`, `a:${address}`]) {
      const f = this.failures.get(key);
      if (f && f.until > t) {
        const s = Math.ceil((f.until - t) / 1000);
        throw Object.assign(new OrielError(429, `too many failed sign-ins: try again in ${s} s`, 'too_many_attempts'), { retryAfterSec: s });
      }
    }
  }

  failed(account: string, address: string): void {
    const t = this.now();
    for (const key of [`u:${account}`, `a:${address}`]) {
      const prev = this.failures.get(key);
      const f = prev && t - prev.last < FORGET_MS ? prev : { count: 0, last: t, until: 0 };
      f.count++;
      f.last = t;
      if (f.count >= FREE_FAILURES) {
        f.until = t + Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (f.count - FREE_FAILURES));
      }
      this.failures.delete(key); // re-inserted: the Map's order is then oldest-failure first
      this.failures.set(key, f);
    }
    while (this.failures.size > MAX_KEYS) this.failures.delete(this.failures.keys().next().value!);
  }

  succeeded(account: string): void {
    this.failures.delete(`u:${account}`);
  }

  /** Runs a password check in one of the slots (waiting for one), or throws 503 when too many already wait. */
  async slot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= SCRYPT_SLOTS) {
      if (this.queue.length >= MAX_QUEUE) throw new OrielError(503, 'too many sign-ins at once: try again in a moment', 'busy');
      await new Promise<void>((resolve) => this.queue.push(resolve));
    }
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }
}
