// The SPICE ticket: RSA-OAEP with SHA-1 (and MGF1-SHA-1) under the server's 1024-bit public key
// (docs/spice-protocol.md §3.3 step 4). Node's publicEncrypt defaults oaepHash to 'sha1'; it is set
// explicitly here because the protocol depends on it. node:crypto takes a few milliseconds to load on a fresh
// process: it is loaded on first use, or ahead (loadTicketCrypto) while the server makes the key of a link.
import { createRequire } from 'node:module';
import type { TicketEncryptor } from '../spice/index.ts';

type NodeCrypto = typeof import('node:crypto');
let crypto: NodeCrypto | undefined;

/** node:crypto, loaded (synchronously) on the first call. */
export function loadTicketCrypto(): NodeCrypto {
  return (crypto ??= createRequire(import.meta.url)('node:crypto') as NodeCrypto);
}

export const nodeEncryptTicket: TicketEncryptor = async (spkiDer, plaintext) => {
  const { constants, createPublicKey, publicEncrypt } = loadTicketCrypto();
  const key = createPublicKey({ key: Buffer.from(spkiDer), format: 'der', type: 'spki' });
  const out = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, plaintext);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
};
