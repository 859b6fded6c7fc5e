// What the switch answers itself, as the network's gateway (the subnet's first address, a MAC of its own): ARP for
// that address, DHCP (each port's fixed lease), DNS for the VMs' names, ping.
import { Resolver } from 'node:dns/promises';
import { gatewayOf, maskOf, type Subnet } from './addresses.ts';
import { dhcpAnswer, parseDhcp, DHCP_CLIENT_PORT, DHCP_SERVER_PORT } from './dhcp.ts';
import { dnsAnswer, parseDnsQuery, RCODE_NXDOMAIN, RCODE_OK, RCODE_SERVFAIL, TYPE_A } from './dns.ts';
import {
  arpReply, BROADCAST_MAC, checksum, ethernet, ETHERTYPE_IPV4, IP_PROTO_ICMP, ipv4Packet, macText,
  parseArp, parseIpv4, parseUdp, udpPacket,
} from './frames.ts';

export interface GatewayNetwork {
  name: string;
  subnet: Subnet;
  gatewayMac: string;
  /** A way out: DHCP then offers a default route, DNS resolves other names through the host. */
  nat: boolean;
  /** Lower-case VM name → its lease, for every VM with a card on the network (running or not). */
  hosts: Map<string, number>;
}

export interface GatewayPort {
  vmName: string;
  mac: string;
  ip: number;
}

const DNS_PORT = 53;
const upstream = new Resolver({ timeout: 2000, tries: 1 });

/**
 * Handles a frame the port sent if it is meant for the gateway. Returns true when the frame was the gateway's
 * alone (not to be forwarded); replies go through `reply`, possibly later (DNS through the host).
 */
export function gatewayHandle(
  net: GatewayNetwork, port: GatewayPort, f: Buffer, reply: (frame: Buffer) => void,
): boolean {
  const gw = gatewayOf(net.subnet);
  const arp = parseArp(f);
  if (arp) {
    if (arp.op === 1 && arp.targetIp === gw) {
      reply(arpReply(net.gatewayMac, gw, port.mac, port.ip));
      return true;
    }
    return false;
  }
  const udp = parseUdp(f);
  if (udp?.dstPort === DHCP_SERVER_PORT) {
    const req = parseDhcp(udp.data);
    if (req && req.chaddr === port.mac) {
      const answer = dhcpAnswer(req, udp.data, {
        clientMac: port.mac, ip: port.ip, serverIp: gw, mask: maskOf(net.subnet.prefix),
        ...(net.nat ? { router: gw } : {}), dns: gw, domain: net.name, hostname: port.vmName,
      });
      if (answer)
        reply(ethernet(port.mac, net.gatewayMac, ETHERTYPE_IPV4,
          udpPacket(gw, DHCP_SERVER_PORT, 0xffffffff, DHCP_CLIENT_PORT, answer)));
    }
    return true; // DHCP is the gateway's only: no VM may answer another's
  }
  if (macText(f, 0) !== net.gatewayMac && macText(f, 0) !== BROADCAST_MAC) return false;
  const ip = parseIpv4(f);
  if (!ip || ip.dst !== gw) return macText(f, 0) === net.gatewayMac;
  if (udp?.dstPort === DNS_PORT) {
    const q = parseDnsQuery(udp.data);
    if (q) {
      const send = (d: Buffer) =>
        reply(ethernet(port.mac, net.gatewayMac, ETHERTYPE_IPV4, udpPacket(gw, DNS_PORT, ip.src, udp.srcPort, d)));
      const name = q.name.replace(/\.$/, '');
      const suffix = `.${net.name}`;
      const short = name.endsWith(suffix) ? name.slice(0, -suffix.length) : name;
      const host = net.hosts.get(short);
      if (host !== undefined) send(dnsAnswer(q, RCODE_OK, q.type === TYPE_A ? [host] : []));
      else if (!net.nat || q.type !== TYPE_A || !name.includes('.') || short !== name) send(dnsAnswer(q, RCODE_NXDOMAIN));
      else
        upstream.resolve4(name).then(
          (addrs) => send(dnsAnswer(q, RCODE_OK, addrs.slice(0, 8).map(ipToNumber))),
          (e: { code?: string }) =>
            send(dnsAnswer(q, e.code === 'ENOTFOUND' || e.code === 'ENODATA' ? RCODE_NXDOMAIN : RCODE_SERVFAIL)),
        );
    }
    return true;
  }
  if (ip.proto === IP_PROTO_ICMP && ip.end - ip.payload >= 8 && f[ip.payload] === 8) {
    const icmp = Buffer.from(f.subarray(ip.payload, ip.end));
    icmp[0] = 0; // echo reply
    icmp.writeUInt16BE(0, 2);
    icmp.writeUInt16BE(checksum(icmp), 2);
    reply(ethernet(port.mac, net.gatewayMac, ETHERTYPE_IPV4, ipv4Packet(gw, ip.src, IP_PROTO_ICMP, icmp)));
    return true;
  }
  return true;
}

const ipToNumber = (s: string) => s.split('.').reduce((n, p) => n * 256 + Number(p), 0) >>> 0;
export const isDhcpFromClient = (f: Buffer): boolean => {
  const u = parseUdp(f);
  return !!u && u.srcPort === DHCP_CLIENT_PORT && u.dstPort === DHCP_SERVER_PORT && u.ip.src === 0;
};
