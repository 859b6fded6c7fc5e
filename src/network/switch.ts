// Oriel's software switch: Ethernet frames between the cards of the VMs on a network. Each card is a port: a stream
// link to QEMU's `-netdev stream,server=on` socket. The switch learns which port holds which MAC, floods
// destinations it has not learnt, and checks every frame a port sends: the source MAC must be the card's, ARP and
// IPv4 must come from the port's lease (0.0.0.0 only for DHCP), only IPv4 and ARP pass. Networks never share a
// frame. The gateway (gateway.ts) answers ARP, DHCP, DNS and ping for the subnet's first address.
import { gatewayHandle, isDhcpFromClient, type GatewayNetwork } from './gateway.ts';
import {
  ETH_HEADER, ETHERTYPE_ARP, ETHERTYPE_IPV4, IP_PROTO_UDP, isGroupMac, macBytes, macText, parseArp, parseIpv4,
} from './frames.ts';
import { DHCP_SERVER_PORT } from './dhcp.ts';
import { StreamLink } from './stream-link.ts';
import { gatewayOf, inSubnet, type Subnet } from './addresses.ts';
import { Uplink } from './uplink.ts';
import type { Forward } from './nat.ts';
import type { Socket } from 'node:net';

export interface NetworkConfig {
  id: string;
  name: string;
  subnet: Subnet;
  gatewayMac: string;
  nat: boolean;
  /** The VMs reach the gateway (and the way out), not each other. */
  isolated: boolean;
}

export interface PortConfig {
  /** Unique across the switch, e.g. `<vm id>/<card>`. */
  id: string;
  vmName: string;
  mac: string;
  ip: number;
  /** QEMU's listening socket for this card. */
  socketPath: string;
}

export interface PortCounters {
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  droppedSpoofed: number;
  droppedMalformed: number;
  droppedUnsupported: number;
  droppedCongested: number;
}

export interface PortStatus extends PortCounters {
  id: string;
  vmName: string;
  mac: string;
  ip: number;
  connected: boolean;
}

const RETRY_MS = 300;
const MAC_AGE_MS = 300_000;

class Port {
  link?: StreamLink;
  counters: PortCounters = {
    rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0,
    droppedSpoofed: 0, droppedMalformed: 0, droppedUnsupported: 0, droppedCongested: 0,
  };
  retry?: NodeJS.Timeout;
  removed = false;
  constructor(readonly cfg: PortConfig, readonly net: Network) {}

  send(f: Buffer): void {
    if (!this.link?.send(f)) {
      this.counters.droppedCongested++;
      return;
    }
    this.counters.txFrames++;
    this.counters.txBytes += f.length;
  }
}

type Sink = (frame: Buffer, timeMs: number) => void;

class Network implements GatewayNetwork {
  ports = new Map<string, Port>();
  /** MAC → the port it was last seen on, and when. */
  macs = new Map<string, { port: Port; at: number }>();
  hosts = new Map<string, number>();
  sinks = new Set<Sink>();
  uplink?: Uplink;
  forwards: Forward[] = [];
  constructor(public cfg: NetworkConfig) {}
  get name() { return this.cfg.name; }
  get subnet() { return this.cfg.subnet; }
  get gatewayMac() { return this.cfg.gatewayMac; }
  get nat() { return this.cfg.nat; }
}

export class Switch {
  private nets = new Map<string, Network>();
  private ports = new Map<string, Port>();
  /** Reports problems a person may want to see (a port that sent a broken stream). */
  constructor(private readonly log: (msg: string, extra: Record<string, unknown>) => void = () => undefined) {}

  /** Adds a network, or updates its settings and host names if it is there already. */
  setNetwork(cfg: NetworkConfig, hosts?: Map<string, number>): void {
    const n = this.nets.get(cfg.id);
    if (n) n.cfg = cfg;
    else this.nets.set(cfg.id, new Network(cfg));
    if (hosts) this.nets.get(cfg.id)!.hosts = hosts;
  }

  /** Connects the network's way out (a passt stream, nat.ts translating); replaces the one before. */
  setUplink(networkId: string, sock: Socket, peerMac: string): void {
    const n = this.nets.get(networkId);
    if (!n) throw new Error(`no network ${networkId} on the switch`);
    n.uplink?.close();
    n.uplink = new Uplink(sock, peerMac, gatewayOf(n.cfg.subnet), n.cfg.gatewayMac, {
      deliver: (vmIp, f) => {
        for (const p of n.ports.values()) {
          if (p.cfg.ip !== vmIp) continue;
          macBytes(p.cfg.mac).copy(f, 0);
          tap(n, f, Date.now());
          p.send(f);
          return;
        }
      },
    });
    n.uplink.setForwards(n.forwards);
  }

  /** The host ports (through the uplink) that reach guests' ports on this network. */
  setForwards(networkId: string, list: Forward[]): void {
    const n = this.nets.get(networkId);
    if (!n) return;
    n.forwards = list;
    n.uplink?.setForwards(list);
  }

  uplinkOf(networkId: string): { connected: boolean; flows: number } | undefined {
    const u = this.nets.get(networkId)?.uplink;
    return u && { connected: u.connected, flows: u.flows };
  }

  removeNetwork(id: string): void {
    const n = this.nets.get(id);
    if (!n) return;
    n.uplink?.close();
    for (const p of [...n.ports.values()]) this.removePort(p.cfg.id);
    this.nets.delete(id);
  }

  hasPort(id: string): boolean {
    return this.ports.has(id);
  }

  /** Adds a port and dials its socket, again after each disconnect, until it is removed. */
  addPort(networkId: string, cfg: PortConfig): void {
    const net = this.nets.get(networkId);
    if (!net) throw new Error(`no network ${networkId} on the switch`);
    if (this.ports.has(cfg.id)) this.removePort(cfg.id);
    const port = new Port(cfg, net);
    this.ports.set(cfg.id, port);
    net.ports.set(cfg.id, port);
    this.dial(port);
  }

  /** A port waiting to dial again (its socket was not there yet: its QEMU was starting) dials now. */
  dialNow(id: string): void {
    const p = this.ports.get(id);
    if (!p || p.link || !p.retry) return;
    clearTimeout(p.retry);
    this.dial(p);
  }

  removePort(id: string): void {
    const p = this.ports.get(id);
    if (!p) return;
    p.removed = true;
    clearTimeout(p.retry);
    p.link?.close();
    this.ports.delete(id);
    p.net.ports.delete(id);
    for (const [mac, e] of p.net.macs) if (e.port === p) p.net.macs.delete(mac);
  }

  portsOf(networkId: string): PortStatus[] {
    const n = this.nets.get(networkId);
    return n ? [...n.ports.values()].map(status) : [];
  }

  port(id: string): PortStatus | undefined {
    const p = this.ports.get(id);
    return p && status(p);
  }

  /** Calls `sink` with every frame the network carries (as accepted from a port, or sent by the gateway). */
  capture(networkId: string, sink: Sink): () => void {
    const n = this.nets.get(networkId);
    if (!n) throw new Error(`no network ${networkId} on the switch`);
    n.sinks.add(sink);
    return () => n.sinks.delete(sink);
  }

  close(): void {
    for (const id of [...this.nets.keys()]) this.removeNetwork(id);
  }

  private dial(port: Port): void {
    port.retry = undefined; // in flight: a dialNow meanwhile waits for its outcome
    if (port.removed) return;
    StreamLink.dial(port.cfg.socketPath, {
      frame: (f) => this.ingress(port, f),
      malformed: (why) => {
        port.counters.droppedMalformed++;
        this.log('network port sent a broken stream; reconnecting', { port: port.cfg.id, why });
      },
      closed: () => {
        port.link = undefined;
        if (!port.removed) port.retry = setTimeout(() => this.dial(port), RETRY_MS);
      },
    }).then(
      (link) => {
        if (port.removed) link.close();
        else if (link.isOpen) port.link = link; // else closed already: its retry is set
      },
      () => {
        if (!port.removed) port.retry = setTimeout(() => this.dial(port), RETRY_MS);
      },
    );
  }

  /** A frame from a port: checked, seen by the gateway, forwarded. Never throws. */
  private ingress(port: Port, f: Buffer): void {
    try {
      this.forward(port, f);
    } catch (e) {
      port.counters.droppedMalformed++;
      this.log('switch dropped a frame it could not handle', { port: port.cfg.id, error: (e as Error).message });
    }
  }

  private forward(port: Port, f: Buffer): void {
    const c = port.counters;
    if (f.length < ETH_HEADER) { c.droppedMalformed++; return; }
    if (macText(f, 6) !== port.cfg.mac) { c.droppedSpoofed++; return; }
    const verdict = checkPayload(port, f);
    if (verdict !== 'ok') {
      if (verdict === 'spoofed') c.droppedSpoofed++;
      else if (verdict === 'malformed') c.droppedMalformed++;
      else c.droppedUnsupported++;
      return;
    }
    c.rxFrames++;
    c.rxBytes += f.length;
    const net = port.net;
    const now = Date.now();
    // A MAC stays with the live port that had it first (should two ports have one: a copy restored --as before copies
    // got MACs of their own).
    const owner = net.macs.get(port.cfg.mac);
    if (!owner || owner.port === port || !owner.port.link?.isOpen || now - owner.at > MAC_AGE_MS)
      net.macs.set(port.cfg.mac, { port, at: now });
    tap(net, f, now);
    const reply = (r: Buffer) => {
      tap(net, r, Date.now());
      if (!port.removed) port.send(r);
    };
    if (net.cfg.nat && macText(f, 0) === net.cfg.gatewayMac) {
      const ip = parseIpv4(f);
      if (ip && !inSubnet(net.cfg.subnet, ip.dst) && ip.dst !== 0xffffffff) {
        net.uplink?.send(f);
        return;
      }
    }
    if (gatewayHandle(net, port.cfg, f, reply)) return;
    const dst = macText(f, 0);
    const learnt = net.macs.get(dst);
    if (!isGroupMac(f) && learnt && now - learnt.at < MAC_AGE_MS) {
      if (learnt.port !== port && !net.cfg.isolated) learnt.port.send(f);
      return;
    }
    if (net.cfg.isolated) return; // no other VM may hear it; the gateway has seen it
    for (const p of net.ports.values()) if (p !== port && p.link) p.send(f);
  }
}

function checkPayload(port: Port, f: Buffer): 'ok' | 'spoofed' | 'malformed' | 'unsupported' {
  const type = f.readUInt16BE(12);
  if (type === ETHERTYPE_ARP) {
    const arp = parseArp(f);
    if (!arp) return 'malformed';
    if (arp.senderMac !== port.cfg.mac) return 'spoofed';
    // 0.0.0.0: an ARP probe (RFC 5227) before the address is used.
    return arp.senderIp === port.cfg.ip || arp.senderIp === 0 ? 'ok' : 'spoofed';
  }
  if (type === ETHERTYPE_IPV4) {
    const ip = parseIpv4(f);
    if (!ip) return 'malformed';
    // Only the gateway serves DHCP: a VM answering as a DHCP server impersonates it.
    if (ip.proto === IP_PROTO_UDP && ip.end - ip.payload >= 8 && f.readUInt16BE(ip.payload) === DHCP_SERVER_PORT)
      return 'spoofed';
    if (ip.src === port.cfg.ip) return 'ok';
    return isDhcpFromClient(f) ? 'ok' : 'spoofed';
  }
  return 'unsupported'; // IPv6, VLAN tags, anything else: this network carries IPv4 only
}

function tap(net: Network, f: Buffer, at: number): void {
  for (const s of net.sinks) {
    try { s(f, at); } catch { net.sinks.delete(s); }
  }
}

function status(p: Port): PortStatus {
  return { id: p.cfg.id, vmName: p.cfg.vmName, mac: p.cfg.mac, ip: p.cfg.ip, connected: !!p.link?.isOpen,
    ...p.counters };
}
