// The SPICE ticket in the browser: RSA-OAEP with SHA-1 under the server's public key (SubjectPublicKeyInfo DER).
// WebCrypto does it where the page is a secure context (https, or http on localhost). A page served over plain
// http on the LAN has no crypto.subtle, and QEMU decrypts the ticket even with disable-ticketing (spice-server
// reds_handle_ticket), so the console would not link: there the small implementation below (RFC 8017 §7.1.1 with
// BigInt) does the same. The ticket is no secret in Oriel (QEMU runs with disable-ticketing; access is decided by
// the server before the WebSocket opens), so a plain-JS RSA is good enough here.
import type { TicketEncryptor } from '../spice/index.ts';

export const browserEncryptTicket: TicketEncryptor = async (spkiDer, plaintext) => {
  const subtle = globalThis.crypto?.subtle;
  if (subtle) {
    const key = await subtle.importKey(
      'spki',
      spkiDer as Uint8Array<ArrayBuffer>,
      { name: 'RSA-OAEP', hash: 'SHA-1' },
      false,
      ['encrypt'],
    );
    return new Uint8Array(await subtle.encrypt({ name: 'RSA-OAEP' }, key, plaintext as Uint8Array<ArrayBuffer>));
  }
  return rsaOaepSha1Encrypt(spkiDer, plaintext);
};

/** RSAES-OAEP-ENCRYPT with SHA-1 and MGF1-SHA-1, empty label. */
export function rsaOaepSha1Encrypt(spkiDer: Uint8Array, message: Uint8Array, seed?: Uint8Array): Uint8Array {
  const { n, e } = parseRsaSpki(spkiDer);
  const k = Math.ceil(n.toString(16).length / 2);
  const hLen = 20;
  if (message.length > k - 2 * hLen - 2) throw new Error('message too long for RSA-OAEP');
  const db = new Uint8Array(k - hLen - 1);
  db.set(sha1(new Uint8Array(0)), 0);
  db[k - hLen - 1 - message.length - 1] = 1;
  db.set(message, k - hLen - 1 - message.length);
  const s = seed ?? globalThis.crypto.getRandomValues(new Uint8Array(hLen));
  const maskedDb = xor(db, mgf1(s, db.length));
  const maskedSeed = xor(s, mgf1(maskedDb, hLen));
  const em = new Uint8Array(k);
  em.set(maskedSeed, 1);
  em.set(maskedDb, 1 + hLen);
  const c = modPow(toBigInt(em), e, n);
  return fromBigInt(c, k);
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

function mgf1(seed: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(len);
  const buf = new Uint8Array(seed.length + 4);
  buf.set(seed);
  for (let c = 0, o = 0; o < len; c++, o += 20) {
    new DataView(buf.buffer).setUint32(seed.length, c);
    const h = sha1(buf);
    out.set(h.subarray(0, Math.min(20, len - o)), o);
  }
  return out;
}

/** SHA-1 (FIPS 180-4). */
export function sha1(msg: Uint8Array): Uint8Array {
  const ml = msg.length;
  const padded = new Uint8Array(((ml + 9 + 63) >> 6) << 6);
  padded.set(msg);
  padded[ml] = 0x80;
  const dv = new DataView(padded.buffer);
  dv.setUint32(padded.length - 8, Math.floor((ml * 8) / 2 ** 32));
  dv.setUint32(padded.length - 4, (ml * 8) >>> 0);
  let h0 = 0x67452301, h1 = 0xefcdab89, h2 = 0x98badcfe, h3 = 0x10325476, h4 = 0xc3d2e1f0;
  const w = new Uint32Array(80);
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = dv.getUint32(off + i * 4);
    for (let i = 16; i < 80; i++) {
      const x = w[i - 3]! ^ w[i - 8]! ^ w[i - 14]! ^ w[i - 16]!;
      w[i] = (x << 1) | (x >>> 31);
    }
    let a = h0, b = h1, c = h2, d = h3, e = h4;
    for (let i = 0; i < 80; i++) {
      const f = i < 20 ? (b & c) | (~b & d) : i < 40 ? b ^ c ^ d : i < 60 ? (b & c) | (b & d) | (c & d) : b ^ c ^ d;
      const kk = i < 20 ? 0x5a827999 : i < 40 ? 0x6ed9eba1 : i < 60 ? 0x8f1bbcdc : 0xca62c1d6;
      const t = (((a << 5) | (a >>> 27)) + f + e + kk + w[i]!) >>> 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = t;
    }
    h0 = (h0 + a) >>> 0; h1 = (h1 + b) >>> 0; h2 = (h2 + c) >>> 0; h3 = (h3 + d) >>> 0; h4 = (h4 + e) >>> 0;
  }
  const out = new Uint8Array(20);
  const o = new DataView(out.buffer);
  [h0, h1, h2, h3, h4].forEach((h, i) => o.setUint32(i * 4, h));
  return out;
}

/** Modulus and exponent of an RSA SubjectPublicKeyInfo: SEQ { SEQ { oid, params }, BIT STRING { SEQ { n, e } } }. */
export function parseRsaSpki(der: Uint8Array): { n: bigint; e: bigint } {
  let pos = 0;
  const read = (tag: number): Uint8Array => {
    if (der[pos] !== tag) throw new Error(`SPKI: expected tag ${tag} at ${pos}`);
    pos++;
    let len = der[pos++]!;
    if (len & 0x80) {
      const nb = len & 0x7f;
      len = 0;
      for (let i = 0; i < nb; i++) len = len * 256 + der[pos++]!;
    }
    const v = der.subarray(pos, pos + len);
    pos += len;
    return v;
  };
  const spki = read(0x30);
  der = spki;
  pos = 0;
  read(0x30); // algorithm
  const bits = read(0x03);
  der = bits.subarray(1); // unused-bits byte
  pos = 0;
  const rsa = read(0x30);
  der = rsa;
  pos = 0;
  const n = toBigInt(read(0x02));
  const e = toBigInt(read(0x02));
  return { n, e };
}

function toBigInt(b: Uint8Array): bigint {
  let hex = '0x0';
  for (const x of b) hex += x.toString(16).padStart(2, '0');
  return BigInt(hex);
}

function fromBigInt(v: bigint, len: number): Uint8Array {
  const hex = v.toString(16).padStart(len * 2, '0');
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let r = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return r;
}
