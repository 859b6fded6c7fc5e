// The console's connection: opens the SPICE session (taking over the one the page's script started, preconnect.ts),
// reports status changes, and reopens a session that ended unasked, with backoff, while `canReconnect()` says the
// VM still runs. What is done with a session is the console's (spice-console.ts).
import type { SpiceSession } from '../spice/index.ts';
import { openSession, takePreconnected } from './preconnect.ts';

export type ConsoleStatus = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'disconnected';
export interface ConsoleStatusEvent {
  status: ConsoleStatus;
  /** Why the last session ended or failed, when it did. */
  message?: string;
  /** reconnecting: when the next attempt is made. */
  retryInMs?: number;
}

export interface ConnectionHost {
  /** The proxy path, /api/vms/NAME/spice. */
  path: string;
  /** Asked before every automatic reconnect; false: stay disconnected (e.g. the VM is stopped). */
  canReconnect?: (error: Error | undefined) => boolean;
  onStatus(e: ConsoleStatusEvent): void;
  /** A session is open (linked), or (undefined) the last one ended or was closed. */
  onSession(session: SpiceSession | undefined): void;
}

const RETRY_MS = [500, 1000, 2000, 4000, 8000];
/** A session not linked by then (main channel linked and MAIN INIT received) is abandoned and retried. */
const CONNECT_TIMEOUT_MS = 10_000;

export class ConsoleConnection {
  status: ConsoleStatusEvent = { status: 'idle' };
  readonly stats = { reconnects: 0 };
  private _session: SpiceSession | undefined;
  private _wanted = false;
  private _generation = 0;
  private _attempt = 0;
  private _retryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly _h: ConnectionHost) {}

  get session(): SpiceSession | undefined {
    return this._session;
  }

  /** Opens the session (and keeps it open: reconnects until disconnect()). */
  connect(): void {
    this._wanted = true;
    this._attempt = 0;
    clearTimeout(this._retryTimer);
    void this._open();
  }

  disconnect(): void {
    this._wanted = false;
    this._generation++;
    clearTimeout(this._retryTimer);
    const s = this._session;
    this._session = undefined;
    this._h.onSession(undefined);
    s?.close();
    this._setStatus({ status: 'disconnected' });
  }

  /** Reconnects at once if the console is waiting to (e.g. the VM was started again). */
  reconnectNow(): void {
    // Only while waiting for the next attempt: an attempt in flight is left alone (two would kick each other out:
    // spice-server serves one client).
    if (!this._wanted || this._session || this.status.status !== 'reconnecting' || this.status.retryInMs === undefined)
      return;
    clearTimeout(this._retryTimer);
    void this._open();
  }

  /** A message about the current session (a channel failed), kept with the status. */
  note(session: SpiceSession, message: string): void {
    if (this._session === session) this._setStatus({ ...this.status, message });
  }

  private _setStatus(e: ConsoleStatusEvent): void {
    this.status = e;
    this._h.onStatus(e);
  }

  private async _open(): Promise<void> {
    const gen = ++this._generation;
    this._setStatus({ status: this._attempt ? 'reconnecting' : 'connecting', message: this.status.message });
    const path = this._h.path;
    let connecting: Promise<SpiceSession> | undefined;
    try {
      // The first attempt takes over the session the page's script started (preconnect.ts), if there is one.
      // One that failed or has ended since it linked (taken over, the VM closed it) is replaced by a new one.
      const early = this._attempt ? undefined : takePreconnected(path);
      connecting = early
        ? early.then((s) => (s.closed ? openSession(path) : s), () => openSession(path))
        : openSession(path);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const session = await Promise.race([
        connecting,
        new Promise<never>(
          (_, reject) =>
            (timer = setTimeout(() => reject(new Error('the console did not answer')), CONNECT_TIMEOUT_MS)),
        ),
      ]).finally(() => clearTimeout(timer));
      if (gen !== this._generation || !this._wanted) {
        session.close();
        return;
      }
      // Ended between its link and now: nothing to adopt (its onClose would never fire), so it is retried.
      if (session.closed) throw new Error('the console closed');
      this._session = session;
      if (this._attempt) this.stats.reconnects++;
      this._attempt = 0;
      session.onClose((error) => { if (this._session === session) this._retry(error); });
      this._h.onSession(session);
      this._setStatus({ status: 'connected' });
    } catch (e) {
      if (gen !== this._generation) return;
      // A session that links after the timeout is closed when it does.
      void connecting?.then((late) => { if (this._session !== late) late.close(); }, () => undefined);
      this._retry(e as Error);
    }
  }

  private _retry(error: Error | undefined): void {
    this._session = undefined;
    this._h.onSession(undefined);
    const message = error?.message ?? 'the console closed';
    if (!this._wanted || (this._h.canReconnect && !this._h.canReconnect(error))) {
      this._setStatus({ status: 'disconnected', message });
      return;
    }
    const delay = RETRY_MS[Math.min(this._attempt, RETRY_MS.length - 1)]!;
    this._attempt++;
    this._setStatus({ status: 'reconnecting', message, retryInMs: delay });
    this._retryTimer = setTimeout(() => void this._open(), delay);
  }
}
