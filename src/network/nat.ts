// The way out of a --nat network: the VMs' TCP, UDP and ping leave through one address (the gateway's) towards the
// uplink (passt, which carries them over the host's own sockets), each flow on a port (or ping id) of its own; the
// answers are mapped back to the VM that opened the flow. Nothing comes in that a VM did not start.
import { checksum, ETH_HEADER, IP_PROTO_ICMP, IP_PROTO_TCP, IP_PROTO_UDP, parseIpv4, pseudoSum } from './frames.ts';

const FIRST_PORT = 20_000;
const LAST_PORT = 60_999;
/** Idle flows are forgotten after this long. */
const IDLE_MS: Record<number, number> = { [IP_PROTO_TCP]: 3_600_000, [IP_PROTO_UDP]: 180_000, [IP_PROTO_ICMP]: 60_000 };

interface Flow {
  proto: number;
  vmIp: number;
  vmPort: number;
  natPort: number;
  at: number;
  /** A forward (the host reaches a guest port): kept until removed. */
  fixed?: boolean;
}

/** A host port passt listens on, carried to a guest's port: passt connects to the NAT address at `port`. */
export interface Forward {
  proto: 'tcp' | 'udp';
  port: number;
  vmIp: number;
  guestPort: number;
}

export class Nat {
  private out = new Map<string, Flow>();
  private back = new Map<string, Flow>();
  private next = FIRST_PORT;

  constructor(private readonly natIp: number) {}

  /** Replaces the forwards: new flows to the NAT address on these ports go to the guests. */
  setForwards(list: Forward[]): void {
    for (const [k, fl] of this.out) {
      if (!fl.fixed) continue;
      this.out.delete(k);
      this.back.delete(`${fl.proto}:${fl.natPort}`);
    }
    for (const fw of list) {
      const proto = fw.proto === 'tcp' ? IP_PROTO_TCP : IP_PROTO_UDP;
      const old = this.back.get(`${proto}:${fw.port}`);
      if (old) this.out.delete(`${proto}:${old.vmIp}:${old.vmPort}`);
      const flow: Flow = { proto, vmIp: fw.vmIp, vmPort: fw.guestPort, natPort: fw.port, at: 0, fixed: true };
      this.out.set(`${proto}:${fw.vmIp}:${fw.guestPort}`, flow);
      this.back.set(`${proto}:${fw.port}`, flow);
    }
  }

  /** Rewrites a VM's frame (in place) to leave from the NAT address; false if it cannot be translated. */
  outbound(f: Buffer): boolean {
    const ip = parseIpv4(f);
    if (!ip || !this.translatable(f, ip.proto, ip.payload, ip.end)) return false;
    const portAt = this.portOffset(ip.proto, ip.payload, 'src');
    const vmPort = f.readUInt16BE(portAt);
    const key = `${ip.proto}:${ip.src}:${vmPort}`;
    let flow = this.out.get(key);
    if (!flow) {
      const natPort = this.allocate(ip.proto);
      if (natPort === undefined) return false;
      flow = { proto: ip.proto, vmIp: ip.src, vmPort, natPort, at: 0 };
      this.out.set(key, flow);
      this.back.set(`${ip.proto}:${natPort}`, flow);
    }
    flow.at = Date.now();
    f.writeUInt32BE(this.natIp, ETH_HEADER + 12);
    f.writeUInt16BE(flow.natPort, portAt);
    fixChecksums(f, ip.proto, ip.payload, ip.end);
    return true;
  }

  /** Rewrites an answer from the uplink (in place) back to the VM's address; its VM's IP, or undefined to drop. */
  inbound(f: Buffer): number | undefined {
    const ip = parseIpv4(f);
    if (!ip || ip.dst !== this.natIp || !this.translatable(f, ip.proto, ip.payload, ip.end)) return undefined;
    const portAt = this.portOffset(ip.proto, ip.payload, 'dst');
    const flow = this.back.get(`${ip.proto}:${f.readUInt16BE(portAt)}`);
    if (!flow) return undefined;
    flow.at = Date.now();
    f.writeUInt32BE(flow.vmIp, ETH_HEADER + 16);
    f.writeUInt16BE(flow.vmPort, portAt);
    fixChecksums(f, ip.proto, ip.payload, ip.end);
    return flow.vmIp;
  }

  /** Forgets idle flows. */
  sweep(now = Date.now()): void {
    for (const [k, fl] of this.out) {
      if (!fl.fixed && now - fl.at > IDLE_MS[fl.proto]!) {
        this.out.delete(k);
        this.back.delete(`${fl.proto}:${fl.natPort}`);
      }
    }
  }

  get flows(): number {
    return this.out.size;
  }

  private translatable(f: Buffer, proto: number, payload: number, end: number): boolean {
    if (f.readUInt16BE(ETH_HEADER + 6) & 0x3fff) return false; // a fragment: its ports are elsewhere
    if (proto === IP_PROTO_TCP) return end - payload >= 20;
    if (proto === IP_PROTO_UDP) return end - payload >= 8;
    // ping only: echo request (8) out, echo reply (0) back
    return proto === IP_PROTO_ICMP && end - payload >= 8 && (f[payload] === 8 || f[payload] === 0);
  }

  /** Where the flow's port is: TCP/UDP source or destination port, or the ICMP echo identifier. */
  private portOffset(proto: number, payload: number, side: 'src' | 'dst'): number {
    if (proto === IP_PROTO_ICMP) return payload + 4;
    return payload + (side === 'src' ? 0 : 2);
  }

  private allocate(proto: number): number | undefined {
    const span = LAST_PORT - FIRST_PORT + 1;
    for (let i = 0; i < span; i++) {
      const p = FIRST_PORT + ((this.next - FIRST_PORT + i) % span);
      if (!this.back.has(`${proto}:${p}`)) {
        this.next = p + 1 > LAST_PORT ? FIRST_PORT : p + 1;
        return p;
      }
    }
    this.sweep();
    return undefined;
  }
}

/** Recomputes the IPv4 header's checksum and the TCP/UDP/ICMP one after addresses or ports changed. */
function fixChecksums(f: Buffer, proto: number, payload: number, end: number): void {
  f.writeUInt16BE(0, ETH_HEADER + 10);
  f.writeUInt16BE(checksum(f.subarray(ETH_HEADER, payload)), ETH_HEADER + 10);
  const seg = f.subarray(payload, end);
  const src = f.readUInt32BE(ETH_HEADER + 12);
  const dst = f.readUInt32BE(ETH_HEADER + 16);
  if (proto === IP_PROTO_TCP) {
    seg.writeUInt16BE(0, 16);
    seg.writeUInt16BE(checksum(seg, pseudoSum(src, dst, proto, seg.length)), 16);
  } else if (proto === IP_PROTO_UDP) {
    if (seg.readUInt16BE(6) === 0) return; // sent without a checksum
    seg.writeUInt16BE(0, 6);
    const c = checksum(seg, pseudoSum(src, dst, proto, seg.length));
    seg.writeUInt16BE(c === 0 ? 0xffff : c, 6);
  } else {
    seg.writeUInt16BE(0, 2);
    seg.writeUInt16BE(checksum(seg), 2);
  }
}
