// The switch's DHCP server (RFC 2131): every port has one fixed lease, so there is no pool and no state: DISCOVER
// gets an OFFER of that address, REQUEST an ACK if it asks for that address (a NAK otherwise), INFORM an ACK.
import { ipText } from './frames.ts';

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
const MAGIC = 0x63825363;
const DISCOVER = 1;
const OFFER = 2;
const REQUEST = 3;
const ACK = 5;
const NAK = 6;
const INFORM = 8;
export const LEASE_SECONDS = 86_400;

export interface DhcpLease {
  clientMac: string;
  ip: number;
  serverIp: number;
  mask: number;
  /** A default route (networks with a way out). */
  router?: number;
  dns: number;
  domain: string;
  hostname: string;
  mtu?: number;
}

export interface DhcpRequest {
  type: number;
  xid: number;
  chaddr: string;
  requested?: number;
  serverId?: number;
}

/** Reads a BOOTREQUEST; undefined if malformed or not DHCP. */
export function parseDhcp(d: Buffer): DhcpRequest | undefined {
  if (d.length < 240 || d[0] !== 1 || d[1] !== 1 || d[2] !== 6 || d.readUInt32BE(236) !== MAGIC) return undefined;
  const r: DhcpRequest = { type: 0, xid: d.readUInt32BE(4), chaddr: macOf(d, 28) };
  for (let i = 240; i < d.length; ) {
    const code = d[i]!;
    if (code === 255) break;
    if (code === 0) { i++; continue; }
    if (i + 2 > d.length) return undefined;
    const len = d[i + 1]!;
    const v = d.subarray(i + 2, i + 2 + len);
    if (v.length !== len) return undefined;
    if (code === 53 && len === 1) r.type = v[0]!;
    if (code === 50 && len === 4) r.requested = v.readUInt32BE(0);
    if (code === 54 && len === 4) r.serverId = v.readUInt32BE(0);
    i += 2 + len;
  }
  return r.type ? r : undefined;
}

const macOf = (b: Buffer, at: number) =>
  Array.from(b.subarray(at, at + 6), (x) => x.toString(16).padStart(2, '0')).join(':');

/** The server's answer to `req` from the port holding `lease`, or undefined when none is due (RELEASE, DECLINE, a
 * REQUEST meant for another server). */
export function dhcpAnswer(req: DhcpRequest, raw: Buffer, lease: DhcpLease): Buffer | undefined {
  let type: number;
  if (req.type === DISCOVER) type = OFFER;
  else if (req.type === INFORM) type = ACK;
  else if (req.type === REQUEST) {
    if (req.serverId !== undefined && req.serverId !== lease.serverIp) return undefined;
    const wanted = req.requested ?? raw.readUInt32BE(12); // option 50, or ciaddr when renewing
    type = wanted === lease.ip ? ACK : NAK;
  } else return undefined;
  const out = Buffer.alloc(240);
  out[0] = 2; // BOOTREPLY
  out[1] = 1;
  out[2] = 6;
  out.writeUInt32BE(req.xid, 4);
  raw.copy(out, 10, 10, 12); // flags
  if (req.type === INFORM) raw.copy(out, 12, 12, 16); // ciaddr
  if (type !== NAK && req.type !== INFORM) out.writeUInt32BE(lease.ip, 16); // yiaddr
  out.writeUInt32BE(lease.serverIp, 20);
  raw.copy(out, 28, 28, 44); // chaddr
  out.writeUInt32BE(MAGIC, 236);
  const opts: Buffer[] = [opt(53, Buffer.from([type])), opt(54, u32(lease.serverIp))];
  if (type !== NAK) {
    opts.push(opt(1, u32(lease.mask)));
    if (req.type !== INFORM) opts.push(opt(51, u32(LEASE_SECONDS)));
    if (lease.router !== undefined) opts.push(opt(3, u32(lease.router)));
    opts.push(opt(6, u32(lease.dns)), opt(15, Buffer.from(lease.domain)), opt(12, Buffer.from(lease.hostname)));
    if (lease.mtu) opts.push(opt(26, Buffer.from([lease.mtu >> 8, lease.mtu & 255])));
  } else {
    opts.push(opt(56, Buffer.from(`this port's address is ${ipText(lease.ip)}`)));
  }
  return Buffer.concat([out, ...opts, Buffer.from([255])]);
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const opt = (code: number, v: Buffer) => Buffer.concat([Buffer.from([code, v.length]), v]);
