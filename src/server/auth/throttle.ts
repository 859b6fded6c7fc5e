// Guessing passwords is made slow, without letting anyone lock others out for long:
// - per (account, address) pair: five free failures, then a wait that doubles up to 15 minutes;
// - per account, from any address: 20 free failures, then a wait that doubles up to 1 minute (slows a guesser who
//   spreads over many addresses; costs the real owner at most a minute);
// - per address, over any accounts: 50 free failures, then doubling up to 15 minutes (one guesser spraying names;
//   generous because many people may share an address behind NAT or a proxy).
// A waiting key is answered 429 with Retry-After. Each attempt counts as a failure before its password is checked
// (and is taken back if it succeeds), so guesses sent in parallel cannot slip past the counts. At most SCRYPT_SLOTS
// password checks run at once (scrypt costs ~50-100 ms of CPU and 32 MiB each), with a bounded queue behind them.
import { OrielError } from '../../errors.ts';

interface Rule { free: number; maxDelayMs: number }
const RULES: Record<'pair' | 'account' | 'address', Rule> = {
  pair: { free: 5, maxDelayMs: 15 * 60_000 },
  account: { free: 20, maxDelayMs: 60_000 },
  address: { free: 50, maxDelayMs: 15 * 60_000 },
};
const BASE_DELAY_MS = 1000;
/** A key's failures are forgotten this long after its last one. */
const FORGET_MS = 60 * 60_000;
/** Keys remembered at most (oldest dropped first): memory stays bounded under a spray of names and addresses. */
const MAX_KEYS = 100_000;
export const SCRYPT_SLOTS = 2;
const MAX_QUEUE = 64;

interface Failures { count: number; last: number }

export class LoginThrottle {
  private readonly failures = new Map<string, Failures>();
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  private keys(account: string, address: string): [keyof typeof RULES, string][] {
    return [['pair', `p:${account}\n${address}`], ['account', `u:${account}`], ['address', `a:${address}`]];
  }

  /**
   * Throws 429 (with retryAfterSec) while any of the attempt's keys must wait; otherwise counts the attempt as a
   * failure until `succeeded` takes it back.
   */
  begin(account: string, address: string): void {
    const t = this.now();
    let wait = 0;
    for (const [kind, key] of this.keys(account, address)) {
      const f = this.failures.get(key);
      if (!f || t - f.last >= FORGET_MS) continue;
      const rule = RULES[kind];
      if (f.count < rule.free) continue;
      const delay = Math.min(rule.maxDelayMs, BASE_DELAY_MS * 2 ** (f.count - rule.free));
      wait = Math.max(wait, f.last + delay - t);
    }
    if (wait > 0) {
      const s = Math.ceil(wait / 1000);
      const e = new OrielError(429, `too many failed sign-ins: try again in ${s} s`, 'too_many_attempts');
      throw Object.assign(e, { retryAfterSec: s });
    }
    for (const [, key] of this.keys(account, address)) {
      const prev = this.failures.get(key);
      const f = prev && t - prev.last < FORGET_MS ? prev : { count: 0, last: t };
      f.count++;
      f.last = t;
      this.failures.delete(key); // re-inserted: the Map's order is then oldest-failure first
      this.failures.set(key, f);
    }
    while (this.failures.size > MAX_KEYS) this.failures.delete(this.failures.keys().next().value!);
  }

  /**
   * The attempt begun for this account and address was wrong: its wait starts now, when the answer is known, not
   * when the attempt began (a slow password check must not use up the wait that follows it).
   */
  failed(account: string, address: string): void {
    const t = this.now();
    for (const [, key] of this.keys(account, address)) {
      const f = this.failures.get(key);
      if (f) f.last = Math.max(f.last, t);
    }
  }

  /** The attempt begun for this account and address was right: it was no failure, and the pair starts afresh. */
  succeeded(account: string, address: string): void {
    for (const [kind, key] of this.keys(account, address)) {
      const f = this.failures.get(key);
      if (!f) continue;
      if (kind === 'pair' || --f.count <= 0) this.failures.delete(key);
    }
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
