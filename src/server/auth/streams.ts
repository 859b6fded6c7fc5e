// Long-lived streams (the event stream, console and serial WebSockets) outlive the request that opened them, so the
// check made at their start is not enough: each registers here with the credential it was opened under, and is
// closed, with a reason, when that credential ends: sign-out, revocation, expiry, a password change, or the
// account's deletion. Users and ApiTokens call end*() wherever a credential ends; expiry is timed here.

/** The credential a request or stream was authenticated with. `id`: the session's hash, or the API token's id. */
export interface Credential {
  userId: string;
  kind: 'session' | 'token';
  id: string;
  /** ISO time at which it stops being valid; null for a token that never expires. */
  expiresAt: string | null;
}

type Close = (reason: string) => void;

interface Entry {
  cred: Credential;
  close: Close;
  timer?: NodeJS.Timeout;
}

/** setTimeout's longest delay (about 24.8 days): longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class CredentialStreams {
  private readonly entries = new Set<Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Registers a stream; `close` is called at most once, when the credential ends. Returns the unregister function. */
  add(cred: Credential, close: Close): () => void {
    const entry: Entry = { cred, close };
    this.entries.add(entry);
    this.arm(entry);
    return () => this.drop(entry);
  }

  /** Ends the streams of one session or token. */
  endCredential(kind: Credential['kind'], id: string, reason: string): number {
    return this.end((c) => c.kind === kind && c.id === id, reason);
  }

  /** Ends every stream of a user, except those opened under `keep` (the credential that made the change). */
  endUser(userId: string, reason: string, keep?: Pick<Credential, 'kind' | 'id'>): number {
    return this.end((c) => c.userId === userId && !(keep && c.kind === keep.kind && c.id === keep.id), reason);
  }

  /** How many streams are open (for tests and diagnostics). */
  get size(): number {
    return this.entries.size;
  }

  private end(which: (c: Credential) => boolean, reason: string): number {
    let n = 0;
    for (const e of [...this.entries]) {
      if (!which(e.cred)) continue;
      this.fire(e, reason);
      n++;
    }
    return n;
  }

  private arm(entry: Entry): void {
    if (entry.cred.expiresAt === null) return;
    const at = Date.parse(entry.cred.expiresAt);
    const left = at - this.now();
    if (!(left > 0)) {
      queueMicrotask(() => this.fire(entry, expiredReason(entry.cred)));
      return;
    }
    entry.timer = setTimeout(() => {
      if (at <= this.now()) this.fire(entry, expiredReason(entry.cred));
      else this.arm(entry);
    }, Math.min(left, MAX_TIMER_MS));
    entry.timer.unref();
  }

  private fire(entry: Entry, reason: string): void {
    if (!this.entries.has(entry)) return;
    this.drop(entry);
    try {
      entry.close(reason);
    } catch {
      /* a stream that fails to close is already gone */
    }
  }

  private drop(entry: Entry): void {
    clearTimeout(entry.timer);
    this.entries.delete(entry);
  }
}

function expiredReason(c: Credential): string {
  return c.kind === 'session' ? 'your session expired: sign in again' : `the API token expired on ${c.expiresAt}`;
}
