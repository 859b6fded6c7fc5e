// Virtual networks (Oriel's switch, DHCP and DNS): what creating one asks, what the API shows of one and of its
// ports, a VM's cards, a live capture's limits, and the host ports forwarded to a guest.
import { z } from 'zod';

export const networkCreateSchema = z
  .object({
    name: z.string().describe('1-31 characters: lower-case letters, digits or "-", starting with a letter; also the DNS domain'),
    subnet: z.string().max(18).optional().describe('IPv4 CIDR, /16 to /29 (default: a free 10.x.y.0/24)'),
    nat: z.boolean().optional().describe('a way out through the host (passt as the uplink)'),
    isolated: z.boolean().optional().describe('the VMs reach the gateway only, not each other'),
    shared: z.boolean().optional().describe('admins: everybody may attach VMs to it'),
  })
  .strict();
export type NetworkCreate = z.input<typeof networkCreateSchema>;

export const portCountersSchema = z.object({
  rxFrames: z.number(), rxBytes: z.number(), txFrames: z.number(), txBytes: z.number(),
  droppedSpoofed: z.number(), droppedMalformed: z.number(), droppedUnsupported: z.number(),
  droppedCongested: z.number(),
});
export type PortCounters = z.infer<typeof portCountersSchema>;

/** A VM's card on a network: its fixed lease, whether its link is up, and its counters. */
export const portSchema = z.object({
  vm: z.string(),
  card: z.number(),
  mac: z.string(),
  ip: z.string(),
  connected: z.boolean(),
  counters: portCountersSchema.nullable()
    .describe('frames and bytes from (rx) and to (tx) the VM; null while the VM is not running'),
});
export type NetworkPort = z.infer<typeof portSchema>;

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
export type Network = z.infer<typeof networkSchema>;

export const networkParams = z.object({ net: z.string().describe('network name or id') });

/** GET /api/networks/{net}/capture: a pcap stream until `seconds` have passed or `frames` were captured. */
export const captureQuery = z.object({
  seconds: z.coerce.number().int().min(1).max(3600).default(60),
  frames: z.coerce.number().int().min(1).max(10_000_000).optional(),
});
export type CaptureQuery = Partial<z.output<typeof captureQuery>>;

/** A VM's card as the VM view shows it: its network, MAC and fixed lease. */
export const vmNicSchema = z.object({ network: z.string(), mac: z.string(), ip: z.string().nullable() });
export type VmNicView = z.infer<typeof vmNicSchema>;

/** `networks` of a VM create request: a virtio-net card on each network named. */
export const vmNetworksSchema = z
  .array(z.string().min(1).max(64))
  .describe('network names: a virtio-net card on each, in order');

export const FORWARD_PROTOS = ['tcp', 'udp'] as const;
export const forwardProtoSchema = z.enum(FORWARD_PROTOS);

/** A host port on the host's loopback that reaches a guest port (through a --nat network's passt). */
export const forwardSchema = z.object({
  proto: forwardProtoSchema,
  hostPort: z.number(),
  guestPort: z.number(),
  host: z.string().describe('where to connect on the host'),
});
export type Forward = z.infer<typeof forwardSchema>;

/** POST /api/vms/{vm}/forwards. */
export const forwardCreateSchema = z
  .object({
    hostPort: z.number().int().min(1).max(65535),
    guestPort: z.number().int().min(1).max(65535),
    proto: forwardProtoSchema.default('tcp'),
  })
  .strict();
export type ForwardCreate = z.input<typeof forwardCreateSchema>;

/** DELETE /api/vms/{vm}/forwards/{proto}/{hostPort}. */
export const forwardParams = z.object({
  vm: z.string().describe('VM name or id'),
  proto: forwardProtoSchema,
  hostPort: z.coerce.number().int(),
});
