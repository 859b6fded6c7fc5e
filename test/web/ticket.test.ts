// The browser's SPICE ticket encryption without WebCrypto (pages on plain http off localhost): RSA-OAEP SHA-1 in
// plain JS must decrypt with the private key like WebCrypto's output does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createHash, generateKeyPairSync, privateDecrypt, randomBytes } from 'node:crypto';
import { rsaOaepSha1Encrypt, sha1 } from '../../src/spice-web/ticket.ts';

test('sha1 matches node', () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 1000]) {
    const m = randomBytes(n);
    assert.equal(Buffer.from(sha1(m)).toString('hex'), createHash('sha1').update(m).digest('hex'), `length ${n}`);
  }
});

test('RSA-OAEP SHA-1 in plain JS decrypts with the private key (1024-bit key, as spice-server uses)', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  for (const msg of [Buffer.from([0]), Buffer.from('a-password\0'), randomBytes(60)]) {
    const c = rsaOaepSha1Encrypt(new Uint8Array(spki), new Uint8Array(msg));
    assert.equal(c.length, 128);
    const p = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, c);
    assert.deepEqual(p, msg);
  }
  assert.throws(() => rsaOaepSha1Encrypt(new Uint8Array(spki), new Uint8Array(100)), /too long/);
});
