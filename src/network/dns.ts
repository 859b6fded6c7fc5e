// The switch's DNS server (RFC 1035, UDP): answers A queries for the names of the VMs on the network, as `vm` and
// `vm.<network>`; other names are resolved through the host's resolver on networks with a way out (NAT), and
// answered NXDOMAIN otherwise.

export interface DnsQuestion {
  id: number;
  /** Recursion desired, echoed back. */
  rd: boolean;
  name: string;
  type: number;
  cls: number;
  /** Bytes of the question section (copied into the answer). */
  question: Buffer;
}

export const TYPE_A = 1;
const CLASS_IN = 1;
export const RCODE_OK = 0;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
const RCODE_NOTIMP = 4;

/** The one question of a standard query; undefined if the message is not one. */
export function parseDnsQuery(d: Buffer): DnsQuestion | undefined {
  if (d.length < 12) return undefined;
  const flags = d.readUInt16BE(2);
  if (flags & 0x8000 || (flags >> 11) & 15 || d.readUInt16BE(4) !== 1) return undefined; // a response / not QUERY
  const labels: string[] = [];
  let i = 12;
  for (;;) {
    if (i >= d.length) return undefined;
    const len = d[i]!;
    if (len === 0) { i++; break; }
    if (len > 63 || i + 1 + len > d.length) return undefined; // no compression in a question
    labels.push(d.toString('latin1', i + 1, i + 1 + len));
    i += 1 + len;
    if (labels.length > 127) return undefined;
  }
  if (i + 4 > d.length) return undefined;
  return {
    id: d.readUInt16BE(0),
    rd: (flags & 0x0100) !== 0,
    name: labels.join('.').toLowerCase(),
    type: d.readUInt16BE(i),
    cls: d.readUInt16BE(i + 2),
    question: d.subarray(12, i + 4),
  };
}

/** A response with the given A records (empty: no data; rcode for errors). */
export function dnsAnswer(q: DnsQuestion, rcode: number, addresses: number[] = [], ttl = 60): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(q.id, 0);
  // QR, AA (authoritative for our names), RD echoed, RA (we answer recursively on NAT networks).
  h.writeUInt16BE(0x8000 | 0x0400 | (q.rd ? 0x0100 : 0) | 0x0080 | (q.cls === CLASS_IN ? rcode : RCODE_NOTIMP), 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(addresses.length, 6);
  const answers = addresses.map((ip) => {
    const a = Buffer.alloc(16);
    a.writeUInt16BE(0xc00c, 0); // pointer to the question's name
    a.writeUInt16BE(TYPE_A, 2);
    a.writeUInt16BE(CLASS_IN, 4);
    a.writeUInt32BE(ttl, 6);
    a.writeUInt16BE(4, 10);
    a.writeUInt32BE(ip >>> 0, 12);
    return a;
  });
  return Buffer.concat([h, q.question, ...answers]);
}
