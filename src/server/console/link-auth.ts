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
 * before forwarding it); it writes what QEMU must get through `upstream`. Throws LinkAuthError on a client that
 * asks for another mechanism than the SPICE ticket, or sends before the server's reply.
 */
export class LinkTicketSwap {
  private server = Buffer.alloc(0);
  private client = Buffer.alloc(0);
  private pubKey: Uint8Array | undefined;
  private ticketBytes = 0;
  private expectMech = false;
  private stage: 'reply' | 'mech' | 'ticket' | 'encrypting' | 'through' = 'reply';

  constructor(
    private readonly password: string,
    private readonly clientAuthSel: boolean,
    private readonly upstream: (b: Buffer) => void,
    private readonly onError: (e: Error) => void,
  ) {}

  get done(): boolean {
    return this.stage === 'through';
  }

  fromServer(chunk: Buffer): void {
    if (this.stage !== 'reply') return;
    this.server = Buffer.concat([this.server, chunk]);
    if (this.server.length < HEADER_BYTES) return;
    const size = decodeLinkHeader(this.server.subarray(0, HEADER_BYTES));
    if (this.server.length < HEADER_BYTES + size) return;
    const reply = decodeLinkReply(this.server.subarray(HEADER_BYTES, HEADER_BYTES + size));
    this.server = Buffer.alloc(0);
    if (reply.error !== 0) {
      this.stage = 'through'; // the server refused the link itself; nothing more to swap
      return;
    }
    this.pubKey = reply.pubKey;
    const bits = createPublicKey({ key: Buffer.from(reply.pubKey), format: 'der', type: 'spki' })
      .asymmetricKeyDetails?.modulusLength ?? 1024;
    this.ticketBytes = bits / 8;
    const serverSel = (reply.commonCaps[0] ?? 0) & (1 << CommonCap.PROTOCOL_AUTH_SELECTION);
    this.expectMech = this.clientAuthSel && serverSel !== 0;
    this.stage = this.expectMech ? 'mech' : 'ticket';
    this.step();
  }

  fromClient(chunk: Buffer): void {
    if (this.stage === 'through') return this.upstream(chunk);
    this.client = Buffer.concat([this.client, chunk]);
    if (this.stage === 'reply') {
      if (this.client.length > 0) this.onError(new LinkAuthError('client sent data before the link reply'));
      return;
    }
    this.step();
  }

  private step(): void {
    if (this.stage === 'mech' && this.client.length >= AUTH_MECH_BYTES) {
      const mech = this.client.readUInt32LE(0);
      if (mech !== CommonCap.AUTH_SPICE) {
        return this.onError(new LinkAuthError('only SPICE ticket authentication is offered through the proxy'));
      }
      this.upstream(this.client.subarray(0, AUTH_MECH_BYTES));
      this.client = this.client.subarray(AUTH_MECH_BYTES);
      this.stage = 'ticket';
    }
    if (this.stage === 'ticket' && this.client.length >= this.ticketBytes) {
      const rest = this.client.subarray(this.ticketBytes); // the client's own ticket is dropped
      this.client = Buffer.alloc(0);
      this.stage = 'encrypting';
      const plain = Buffer.concat([Buffer.from(this.password, 'utf8'), Buffer.alloc(1)]);
      nodeEncryptTicket(this.pubKey!, plain).then(
        (ticket) => {
          this.upstream(Buffer.from(ticket));
          this.stage = 'through';
          const more = Buffer.concat([rest, this.client]);
          this.client = Buffer.alloc(0);
          if (more.length) this.upstream(more);
        },
        (e: Error) => this.onError(e),
      );
    }
  }
}
