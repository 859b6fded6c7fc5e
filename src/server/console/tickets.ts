// Console tickets: a short-lived, single-use credential for one console session, for clients that cannot send
// the session cookie or an API token on a WebSocket (an embedding page, a kiosk). The main channel's connection
// uses up the ticket; the other channels of that SPICE session (same session id, while the main channel is
// open) are let in on it. Tickets live in memory: a server restart voids them, which is what one wants.
// A ticket carries the credential (session or API token) it was issued under: it is refused once that credential
// has ended, and the console it opened is closed when the credential ends (see auth/streams.ts).
import { randomBytes } from 'node:crypto';
import type { Credential } from '../auth/streams.ts';
import { OrielError } from '../../errors.ts';

export const TICKET_TTL_MS = 60_000;
/** Tickets one user may hold unredeemed (issued, unused, unexpired) at once. */
export const MAX_TICKETS_PER_USER = 32;

interface Ticket {
  credential: Credential;
  vmId: string;
  expiresAt: number;
  /** Set once the main channel used the ticket. */
  session?: { id?: number; open: boolean };
}

export class ConsoleTickets {
  private readonly tickets = new Map<string, Ticket>();

  issue(credential: Credential, vmId: string): { ticket: string; expiresAt: string } {
    this.sweep();
    let unredeemed = 0;
    for (const t of this.tickets.values()) if (t.credential.userId === credential.userId && !t.session) unredeemed++;
    if (unredeemed >= MAX_TICKETS_PER_USER) {
      throw new OrielError(429, `too many unused console tickets for this user (${MAX_TICKETS_PER_USER}): use them `
        + `or wait until they expire (${TICKET_TTL_MS / 1000} s)`, 'too_many');
    }
    const ticket = randomBytes(24).toString('base64url');
    const expiresAt = Date.now() + TICKET_TTL_MS;
    this.tickets.set(ticket, { credential, vmId, expiresAt });
    return { ticket, expiresAt: new Date(expiresAt).toISOString() };
  }

  /**
   * Who holds the ticket, if it may still open a channel of `vmId`: unexpired and unused (for a main channel), or in
   * use by an open session (for its other channels). Checked before the upgrade; the link then decides which.
   */
  holder(ticket: string, vmId: string): Credential | undefined {
    const t = this.tickets.get(ticket);
    if (!t || t.vmId !== vmId) return undefined;
    if (t.session ? !t.session.open : t.expiresAt < Date.now()) return undefined;
    return t.credential;
  }

  /** For a main channel: uses the ticket up. Returns the ticket's holder, or undefined if not valid. */
  claimForMain(ticket: string, vmId: string): { session: NonNullable<Ticket['session']> } | undefined {
    const t = this.tickets.get(ticket);
    if (!t || t.vmId !== vmId || t.session || t.expiresAt < Date.now()) return undefined;
    t.session = { open: true };
    return { session: t.session };
  }

  /** For another channel: valid while the ticket's main channel is open and carries this session id. */
  checkForChannel(ticket: string, vmId: string, connectionId: number): string | undefined {
    const t = this.tickets.get(ticket);
    if (!t || t.vmId !== vmId || !t.session?.open || t.session.id === undefined || t.session.id !== connectionId)
      return undefined;
    return t.credential.userId;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, t] of this.tickets) if (t.expiresAt < now && !t.session?.open) this.tickets.delete(k);
  }
}
