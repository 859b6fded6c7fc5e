// A network's addresses: its IPv4 subnet, the gateway the switch plays (first host, a MAC of its own) and the stable
// lease a VM gets (a slot chosen from a hash of the VM's id, the next free one on a clash).
import { createHash } from 'node:crypto';
import { ipNumber, ipText } from './frames.ts';

export interface Subnet {
  /** Network address, host order. */
  base: number;
  prefix: number;
}

export const DEFAULT_SUBNET = '10.77.0.0/24';

/** Parses "a.b.c.d/n" (n from 16 to 29); the address is the network address (no host bits). */
export function parseSubnet(text: string): Subnet {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(text);
  if (!m) throw new Error(`subnet must look like 10.77.0.0/24 (got '${text}')`);
  const prefix = Number(m[2]);
  if (prefix < 16 || prefix > 29) throw new Error('subnet prefix must be between /16 and /29');
  const base = ipNumber(m[1]!);
  const mask = maskOf(prefix);
  if ((base & ~mask) >>> 0 !== 0)
    throw new Error(`subnet ${text} has host bits set: did you mean ${ipText((base & mask) >>> 0)}/${prefix}?`);
  return { base, prefix };
}

export const maskOf = (prefix: number): number => (prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0);
export const subnetText = (s: Subnet): string => `${ipText(s.base)}/${s.prefix}`;
export const gatewayOf = (s: Subnet): number => (s.base + 1) >>> 0;
export const inSubnet = (s: Subnet, ip: number): boolean => ((ip & maskOf(s.prefix)) >>> 0) === s.base;
/** Host addresses a VM may get: all but the network address, the gateway (.1) and the broadcast address. */
export const leaseSlots = (s: Subnet): number => 2 ** (32 - s.prefix) - 3;

/** Two subnets share addresses. */
export function overlaps(a: Subnet, b: Subnet): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & maskOf(p)) >>> 0) === ((b.base & maskOf(p)) >>> 0);
}

const hash = (s: string): Buffer => createHash('sha256').update(s).digest();

/** The gateway's MAC on one network. */
export function gatewayMac(networkId: string): string {
  const h = hash(`oriel-gw:${networkId}`);
  return ['02', '0f', ...Array.from(h.subarray(0, 4), (b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** The VM's lease: the hashed slot, or the next free one after it; undefined when the subnet is full. */
export function chooseLease(s: Subnet, vmId: string, taken: Set<number>): number | undefined {
  const slots = leaseSlots(s);
  const start = hash(`oriel-lease:${vmId}`).readUInt32BE(0) % slots;
  for (let i = 0; i < slots; i++) {
    const ip = (s.base + 2 + ((start + i) % slots)) >>> 0;
    if (!taken.has(ip)) return ip;
  }
  return undefined;
}
