// The proxy's half of the SPICE link when QEMU asks for a password (vm/spice-endpoint.ts): the client links as
// usual, with any ticket (its Oriel credential was checked before), and the proxy swaps the client's encrypted
// ticket for its own, RSA-OAEP of the VM's password under the public key in QEMU's link reply. Everything else
// passes unchanged, so the client never learns the password and QEMU never sees a client's guess.
//
// Client → server after the link message: [SpiceLinkAuthMechanism u32, only when both sides announced
// PROTOCOL_AUTH_SELECTION] [ticket: RSA_size bytes] then channel messages (spice-server reds.cpp
// reds_handle_read_link_done / reds_handle_auth_mechanism / reds_handle_ticket).
import { createPublicKey } from 'node:crypto';
import { decodeLinkHeader, decodeLinkReply } from '../../spice/link.ts';
import { CommonCap } from '../../spice/proto/constants.ts';
import { nodeEncryptTicket } from '../../spice-node/crypto.ts';

const HEADER_BYTES = 16;
const AUTH_MECH_BYTES = 4;

export class LinkAuthError extends Error {}

/** True if a client's link message announces PROTOCOL_AUTH_SELECTION (SpiceLinkMess common caps). */
export function clientAuthSelection(link: Buffer): boolean {
  const body = link.subarray(HEADER_BYTES);
  if (body.length < 18 || body.readUInt32LE(6) === 0) return false;
  const at = body.readUInt32LE(14);
  return at + 4 <= body.length && (body.readUInt32LE(at) & (1 << CommonCap.PROTOCOL_AUTH_SELECTION)) !== 0;
}

/**
 * Feed it the client's bytes that follow its link message (`fromClient`) and every server chunk (`fromServer`,
 * before forwarding it); it writes what QEMU must get through `upstream`. The proxy's own mechanism word and
 * ticket go to QEMU as soon as its link reply is in, without waiting for the client's: the client was
 * authenticated and authorised before its link reached QEMU, and its own ticket is dropped anyway. So QEMU
 * finishes the link (and a main channel's MAIN INIT is on its way) while a browser still loads the code that
 * answers the reply. The client's mechanism word and ticket, when they come, are checked (SPICE ticket only) and
 * dropped; what follows passes unchanged. Throws LinkAuthError (via onError) on a client that asks for another
 * mechanism, or sends before the server's reply.
 */
export class LinkTicketSwap {
  private server = Buffer.alloc(0);
  private client: Buffer = Buffer.alloc(0);
  /** Client bytes still to drop (its mechanism word and ticket); known once the reply told the key size. */
  private skip = 0;
  private checkMech = false;
  private stage: 'reply' | 'encrypting' | 'through' = 'reply';
  /**
   * Bytes the proxy sent for the client right after its ticket (a pre-dialled display's DISPLAY_INIT,
   * predial-display.ts): the client's own first bytes after its ticket must be these, and are dropped.
   */
  private ahead: Buffer | undefined;
  /** Bytes QEMU's link reply takes (header and body), once it is in. */
  replyLength: number | undefined;
  /** The client has sent its ticket (so its code that answers the channel runs), or the link was refused. */
  clientTicketIn = false;
  /** Called once when `clientTicketIn` becomes true. */
  onClientTicket?: () => void;

  constructor(
    private readonly password: string,
    private readonly clientAuthSel: boolean,
    private readonly upstream: (b: Buffer) => void,
    private readonly onError: (e: Error) => void,
  ) {}

  /** Our ticket went to QEMU and the client's was dropped: bytes pass both ways unchanged from now on. */
  get done(): boolean {
    return this.stage === 'through' && this.skip === 0 && !this.checkMech && !this.ahead?.length;
  }

  /** Sends `bytes` for the client right after our ticket; the client's first bytes after its own must equal them. */
  sendAhead(bytes: Buffer): void {
    this.ahead = bytes;
    if (this.stage === 'through') this.upstream(bytes);
  }

  fromServer(chunk: Buffer): void {
    if (this.stage !== 'reply') return;
    this.server = Buffer.concat([this.server, chunk]);
    if (this.server.length < HEADER_BYTES) return;
    const size = decodeLinkHeader(this.server.subarray(0, HEADER_BYTES));
    if (this.server.length < HEADER_BYTES + size) return;
    const reply = decodeLinkReply(this.server.subarray(HEADER_BYTES, HEADER_BYTES + size));
    this.server = Buffer.alloc(0);
    this.replyLength = HEADER_BYTES + size;
    if (reply.error !== 0) {
      this.stage = 'through'; // the server refused the link itself; nothing more to swap
      this.ticketIn();
      this.flush();
      return;
    }
    const bits = createPublicKey({ key: Buffer.from(reply.pubKey), format: 'der', type: 'spki' })
      .asymmetricKeyDetails?.modulusLength ?? 1024;
    const serverSel = (reply.commonCaps[0] ?? 0) & (1 << CommonCap.PROTOCOL_AUTH_SELECTION);
    const mech = this.clientAuthSel && serverSel !== 0;
    this.checkMech = mech;
    this.skip = (mech ? AUTH_MECH_BYTES : 0) + bits / 8;
    this.stage = 'encrypting';
    if (mech) {
      const word = Buffer.alloc(AUTH_MECH_BYTES);
      word.writeUInt32LE(CommonCap.AUTH_SPICE);
      this.upstream(word);
    }
    const plain = Buffer.concat([Buffer.from(this.password, 'utf8'), Buffer.alloc(1)]);
    nodeEncryptTicket(reply.pubKey, plain).then(
      (ticket) => {
        this.upstream(Buffer.from(ticket));
        if (this.ahead) this.upstream(this.ahead);
        this.stage = 'through';
        this.flush();
      },
      (e: Error) => this.onError(e),
    );
  }

  fromClient(chunk: Buffer): void {
    this.client = this.client.length ? Buffer.concat([this.client, chunk]) : chunk;
    if (this.stage === 'reply') {
      if (this.client.length > 0) this.onError(new LinkAuthError('client sent data before the link reply'));
      return;
    }
    this.flush();
  }

  private ticketIn(): void {
    if (this.clientTicketIn) return;
    this.clientTicketIn = true;
    this.onClientTicket?.();
  }

  /** Checks and drops the client's mechanism word and ticket; passes what follows once our ticket is out. */
  private flush(): void {
    if (this.checkMech) {
      if (this.client.length < AUTH_MECH_BYTES) return;
      if (this.client.readUInt32LE(0) !== CommonCap.AUTH_SPICE) {
        return this.onError(new LinkAuthError('only SPICE ticket authentication is offered through the proxy'));
      }
      this.checkMech = false;
    }
    const drop = Math.min(this.skip, this.client.length);
    this.client = this.client.subarray(drop); // the client's own ticket is dropped
    this.skip -= drop;
    if (this.skip === 0 && this.stage !== 'reply') this.ticketIn();
    if (this.skip === 0 && this.ahead?.length && this.client.length) {
      const n = Math.min(this.ahead.length, this.client.length);
      if (!this.client.subarray(0, n).equals(this.ahead.subarray(0, n))) {
        return this.onError(new LinkAuthError("the client's first message differs from the one sent for it"));
      }
      this.client = this.client.subarray(n);
      this.ahead = this.ahead.subarray(n);
    }
    if (this.stage === 'through' && this.skip === 0 && !this.ahead?.length && this.client.length) {
      const more = this.client;
      this.client = Buffer.alloc(0);
      this.upstream(more);
    }
  }
}
