// The proxy's ticket swap (server/console/link-auth.ts) against a SPICE server's side built here: the client's
// ticket never reaches the server, the server gets RSA-OAEP of the VM's password under its own key, and the bytes
// around it (auth mechanism, later messages) pass unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, privateDecrypt } from 'node:crypto';
import { clientAuthSelection, LinkAuthError, LinkTicketSwap } from '../../src/server/console/link-auth.ts';
import { encodeLinkMess } from '../../src/spice/link.ts';

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
const spki = publicKey.export({ format: 'der', type: 'spki' }); // 162 bytes, as spice-server sends

/** SpiceLinkHeader + SpiceLinkReply {error 0, pub_key, 1 common cap word, 0 channel caps, caps_offset 178}. */
function linkReply(commonCaps: number): Buffer {
  const body = Buffer.alloc(178 + 4);
  spki.copy(body, 4);
  body.writeUInt32LE(1, 166);
  body.writeUInt32LE(0, 170);
  body.writeUInt32LE(178, 174);
  body.writeUInt32LE(commonCaps, 178);
  const head = Buffer.alloc(16);
  head.write('REDQ', 0, 'latin1');
  head.writeUInt32LE(2, 4);
  head.writeUInt32LE(2, 8);
  head.writeUInt32LE(body.length, 12);
  return Buffer.concat([head, body]);
}

const decrypt = (b: Buffer) =>
  privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, b).toString();
const settle = () => new Promise((r) => setImmediate(r));

test('the client link announces auth selection (our core client does)', () => {
  const link = Buffer.from(encodeLinkMess({ connectionId: 0, channelType: 1, channelId: 0, channelCaps: [] }));
  assert.equal(clientAuthSelection(link), true);
});

test('mechanism passes, the client ticket is replaced by the password, later bytes follow in order', async () => {
  const sent: Buffer[] = [];
  const errors: Error[] = [];
  const swap = new LinkTicketSwap('pa55word', true, (b) => sent.push(Buffer.from(b)), (e) => errors.push(e));
  const reply = linkReply(0b1011);
  swap.fromServer(reply.subarray(0, 50)); // in pieces, as TCP may deliver it
  swap.fromServer(reply.subarray(50));
  const clientTicket = Buffer.alloc(128, 0xaa);
  const mech = Buffer.from([1, 0, 0, 0]);
  swap.fromClient(Buffer.concat([mech, clientTicket.subarray(0, 60)]));
  swap.fromClient(Buffer.concat([clientTicket.subarray(60), Buffer.from('after')]));
  swap.fromClient(Buffer.from('-more'));
  await settle();
  assert.deepEqual(errors, []);
  assert.equal(swap.done, true);
  const all = Buffer.concat(sent);
  assert.deepEqual(all.subarray(0, 4), mech);
  assert.equal(decrypt(all.subarray(4, 132)), 'pa55word\0');
  assert.equal(all.subarray(132).toString(), 'after-more');
  assert.ok(!all.includes(clientTicket.subarray(0, 16)), "the client's ticket is not forwarded");
});

test('without auth selection there is no mechanism word; SASL and early bytes are refused', async () => {
  const sent: Buffer[] = [];
  const swap = new LinkTicketSwap('x', false, (b) => sent.push(b), (e) => assert.fail(e));
  swap.fromServer(linkReply(0b1011));
  swap.fromClient(Buffer.alloc(128, 1));
  await settle();
  assert.equal(decrypt(Buffer.concat(sent)), 'x\0');

  const errors: Error[] = [];
  const sasl = new LinkTicketSwap('x', true, () => {}, (e) => errors.push(e));
  sasl.fromServer(linkReply(0b1111));
  sasl.fromClient(Buffer.from([2, 0, 0, 0]));
  const early = new LinkTicketSwap('x', true, () => {}, (e) => errors.push(e));
  early.fromClient(Buffer.from([1, 0, 0, 0]));
  assert.equal(errors.length, 2);
  assert.ok(errors.every((e) => e instanceof LinkAuthError), errors.join());
});
