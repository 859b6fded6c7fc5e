// Ethernet, ARP, IPv4, UDP and ICMP as the switch reads and writes them: byte offsets, checksums, builders.
// Only what the switch needs: no options are interpreted beyond the IPv4 header length.

export const ETH_HEADER = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const IP_PROTO_ICMP = 1;
export const IP_PROTO_TCP = 6;
export const IP_PROTO_UDP = 17;
/** QEMU drops a stream link that announces a bigger frame (net/net.c NET_BUFSIZE). */
export const MAX_FRAME = 69_632;
export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';

export const macText = (b: Buffer, at = 0): string =>
  Array.from(b.subarray(at, at + 6), (x) => x.toString(16).padStart(2, '0')).join(':');
export const macBytes = (mac: string): Buffer => Buffer.from(mac.replace(/:/g, ''), 'hex');
export const ipText = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
export function ipNumber(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255))
    throw new Error(`not an IPv4 address: ${text}`);
  return parts.reduce((n, p) => n * 256 + Number(p), 0) >>> 0;
}

export const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
export const isGroupMac = (b: Buffer): boolean => (b[0]! & 1) === 1;

/** The Internet checksum (RFC 1071) of `b`, continuing from `sum`. */
export function checksum(b: Buffer, sum = 0): number {
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length & 1) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export interface Ipv4 {
  src: number;
  dst: number;
  proto: number;
  /** Offset of the IP payload in the frame. */
  payload: number;
  /** Offset just past the IP packet (its total length), never past the frame. */
  end: number;
}

/** The IPv4 header of an Ethernet frame, or undefined if it is not a well-formed one. */
export function parseIpv4(f: Buffer): Ipv4 | undefined {
  if (f.length < ETH_HEADER + 20 || f.readUInt16BE(12) !== ETHERTYPE_IPV4) return undefined;
  const vihl = f[ETH_HEADER]!;
  const ihl = (vihl & 15) * 4;
  const total = f.readUInt16BE(ETH_HEADER + 2);
  if (vihl >> 4 !== 4 || ihl < 20 || total < ihl || ETH_HEADER + total > f.length) return undefined;
  return {
    src: f.readUInt32BE(ETH_HEADER + 12),
    dst: f.readUInt32BE(ETH_HEADER + 16),
    proto: f[ETH_HEADER + 9]!,
    payload: ETH_HEADER + ihl,
    end: ETH_HEADER + total,
  };
}

export interface Udp {
  ip: Ipv4;
  srcPort: number;
  dstPort: number;
  data: Buffer;
}

export function parseUdp(f: Buffer): Udp | undefined {
  const ip = parseIpv4(f);
  if (!ip || ip.proto !== IP_PROTO_UDP || ip.end - ip.payload < 8) return undefined;
  const len = f.readUInt16BE(ip.payload + 4);
  if (len < 8 || ip.payload + len > ip.end) return undefined;
  return {
    ip,
    srcPort: f.readUInt16BE(ip.payload),
    dstPort: f.readUInt16BE(ip.payload + 2),
    data: f.subarray(ip.payload + 8, ip.payload + len),
  };
}

export interface Arp {
  op: number;
  senderMac: string;
  senderIp: number;
  targetIp: number;
}

export function parseArp(f: Buffer): Arp | undefined {
  if (f.length < ETH_HEADER + 28 || f.readUInt16BE(12) !== ETHERTYPE_ARP) return undefined;
  const a = ETH_HEADER;
  // Ethernet (1) / IPv4 (0x0800), 6-byte and 4-byte addresses: anything else is not an ARP this network speaks.
  if (f.readUInt16BE(a) !== 1 || f.readUInt16BE(a + 2) !== ETHERTYPE_IPV4 || f[a + 4] !== 6 || f[a + 5] !== 4)
    return undefined;
  return {
    op: f.readUInt16BE(a + 6),
    senderMac: macText(f, a + 8),
    senderIp: f.readUInt32BE(a + 14),
    targetIp: f.readUInt32BE(a + 24),
  };
}

export function ethernet(dst: string, src: string, type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(ETH_HEADER);
  macBytes(dst).copy(h, 0);
  macBytes(src).copy(h, 6);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, payload]);
}

export function arpReply(ourMac: string, ourIp: number, toMac: string, toIp: number): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0);
  a.writeUInt16BE(ETHERTYPE_IPV4, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(2, 6);
  macBytes(ourMac).copy(a, 8);
  a.writeUInt32BE(ourIp, 14);
  macBytes(toMac).copy(a, 18);
  a.writeUInt32BE(toIp, 24);
  return ethernet(toMac, ourMac, ETHERTYPE_ARP, a);
}

export function ipv4Packet(src: number, dst: number, proto: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h[8] = 64;
  h[9] = proto;
  h.writeUInt32BE(src, 12);
  h.writeUInt32BE(dst, 16);
  h.writeUInt16BE(checksum(h), 10);
  return Buffer.concat([h, payload]);
}

/** Sum of the IPv4 pseudo-header, for TCP and UDP checksums. */
export function pseudoSum(src: number, dst: number, proto: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + length;
}

export function udpPacket(src: number, srcPort: number, dst: number, dstPort: number, data: Buffer): Buffer {
  const u = Buffer.alloc(8 + data.length);
  u.writeUInt16BE(srcPort, 0);
  u.writeUInt16BE(dstPort, 2);
  u.writeUInt16BE(u.length, 4);
  data.copy(u, 8);
  const sum = checksum(u, pseudoSum(src, dst, IP_PROTO_UDP, u.length));
  u.writeUInt16BE(sum === 0 ? 0xffff : sum, 6);
  return ipv4Packet(src, dst, IP_PROTO_UDP, u);
}
