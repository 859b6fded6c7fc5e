// Shapes of the network API (routes/networks.ts) and of a VM's cards in the VM view.
import { z } from 'zod';
import type { Users } from './auth/users.ts';
import type { Lease, NetworkRow, Networks } from './networks/networks.ts';
import { gatewayText } from './networks/networks.ts';

export const networkCreateSchema = z
  .object({
    name: z.string().describe('1-31 characters: lower-case letters, digits or "-", starting with a letter; also the DNS domain'),
    subnet: z.string().max(18).optional().describe('IPv4 CIDR, /16 to /29 (default: a free 10.x.y.0/24)'),
    nat: z.boolean().optional().describe('a way out through the host (passt as the uplink)'),
    isolated: z.boolean().optional().describe('the VMs reach the gateway only, not each other'),
    shared: z.boolean().optional().describe('admins: everybody may attach VMs to it'),
  })
  .strict();

export const portSchema = z.object({
  vm: z.string(),
  card: z.number(),
  mac: z.string(),
  ip: z.string(),
  connected: z.boolean(),
  counters: z.object({
    rxFrames: z.number(), rxBytes: z.number(), txFrames: z.number(), txBytes: z.number(),
    droppedSpoofed: z.number(), droppedMalformed: z.number(), droppedUnsupported: z.number(),
    droppedCongested: z.number(),
  }).nullable().describe('frames and bytes from (rx) and to (tx) the VM; null while the VM is not running'),
});

export const networkSchema = z.object({
  id: z.string(),
  name: z.string(),
  owner: z.string(),
  subnet: z.string(),
  gateway: z.string().describe('the switch: DHCP, DNS and ping answer here'),
  nat: z.boolean(),
  isolated: z.boolean(),
  shared: z.boolean(),
  createdAt: z.string(),
  ports: z.array(portSchema),
});
export type NetworkView = z.infer<typeof networkSchema>;

export const forwardSchema = z.object({
  proto: z.enum(['tcp', 'udp']),
  hostPort: z.number(),
  guestPort: z.number(),
  host: z.string().describe('where to connect on the host'),
});

/** A VM's card as the VM view shows it: its network, MAC and fixed lease. */
export const vmNicSchema = z.object({ network: z.string(), mac: z.string(), ip: z.string().nullable() });

export function networkView(n: NetworkRow, networks: Networks, users: Users, vmName: (id: string) => string) {
  const live = new Map(networks.ports(n.id).map((p) => [p.id, p]));
  return {
    id: n.id, name: n.name, owner: users.get(n.ownerId)?.name ?? n.ownerId, subnet: n.subnet,
    gateway: gatewayText(n.subnet), nat: n.nat, isolated: n.isolated, shared: n.shared, createdAt: n.createdAt,
    ports: networks.leases({ networkId: n.id }).map((l: Lease) => {
      const p = live.get(`${l.vmId}/${l.card}`);
      return {
        vm: vmName(l.vmId), card: l.card, mac: l.mac, ip: l.ip, connected: !!p?.connected,
        counters: p ? {
          rxFrames: p.rxFrames, rxBytes: p.rxBytes, txFrames: p.txFrames, txBytes: p.txBytes,
          droppedSpoofed: p.droppedSpoofed, droppedMalformed: p.droppedMalformed,
          droppedUnsupported: p.droppedUnsupported, droppedCongested: p.droppedCongested,
        } : null,
      };
    }),
  };
}
