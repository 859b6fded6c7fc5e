// Virtual networks: their rows (owner, subnet, NAT, isolation, sharing), each VM card's fixed lease, and the switch
// that carries them. The switch runs in the server's process: QEMU listens on each card's socket and the switch
// dials it, so when the server restarts it dials again and running guests keep their links (QEMU 7.2's stream
// client never reconnects; its server side does). A frame that breaks the switch's code is dropped and counted,
// never thrown, so one guest cannot stop the server.
import { randomBytes } from 'node:crypto';
import type { Db } from '../../db/database.ts';
import { followVms } from '../../vm/follow.ts';
import type { VmManager } from '../../vm/manager.ts';
import type { VmRecord } from '../../vm/records.ts';
import { nicSocket } from '../../vm/paths.ts';
import { badRequest, conflict, forbidden, notFound, unprocessable } from '../../errors.ts';
import { Switch, type PortStatus } from '../../network/switch.ts';
import {
  chooseLease, DEFAULT_SUBNET, gatewayMac, gatewayOf, leaseSlots, overlaps, parseSubnet, subnetText, type Subnet,
} from '../../network/addresses.ts';
import { ipNumber, ipText } from '../../network/frames.ts';
import { PASST_MAC, PasstUplink } from '../../network/passt.ts';
import type { Forward } from '../../network/nat.ts';

export const NETWORK_NAME_RE = /^[a-z][a-z0-9-]{0,30}$/;
/** Networks an ordinary user may own (admins: no limit): each costs the server a little memory, nothing more. */
export const MAX_NETWORKS_PER_USER = 16;
/** Cards a VM may have. */
export const MAX_CARDS = 4;

export interface NetworkRow {
  id: string;
  name: string;
  ownerId: string;
  subnet: string;
  nat: boolean;
  isolated: boolean;
  shared: boolean;
  createdAt: string;
}

export interface Lease {
  vmId: string;
  card: number;
  networkId: string;
  mac: string;
  ip: string;
}

interface Who {
  id: string;
  role: 'admin' | 'user';
}

export interface NetworkRequest {
  name: string;
  subnet?: string;
  nat?: boolean;
  isolated?: boolean;
  shared?: boolean;
}

const fromRow = (r: Record<string, unknown>): NetworkRow => ({
  id: r.id as string, name: r.name as string, ownerId: r.owner_id as string, subnet: r.subnet as string,
  nat: !!r.nat, isolated: !!r.isolated, shared: !!r.shared, createdAt: r.created_at as string,
});
const leaseRow = (r: Record<string, unknown>): Lease => ({
  vmId: r.vm_id as string, card: r.card as number, networkId: r.network_id as string, mac: r.mac as string,
  ip: r.ip as string,
});

export class Networks {
  readonly switch: Switch;
  private readonly uplinks = new Map<string, PasstUplink>();
  /** Each --nat network's forwards (forwards.ts sets them; kept here for a passt started later). */
  private readonly forwardsFor = new Map<string, Forward[]>();
  /** Runs inside the VM manager's events: a problem here is logged, never thrown into a VM's lifecycle. */
  private readonly onVm = (vm: VmRecord) => {
    try {
      this.syncPorts(vm);
    } catch (e) {
      this.log('cannot connect the VM\'s network cards', { vm: vm.name, error: (e as Error).message });
    }
  };
  private unfollow: (() => void) | undefined;
  private readonly onVmDeleted = (vm: VmRecord) => {
    this.dropPorts(vm.id);
    for (const id of new Set((vm.spec.nics ?? []).map((n) => n.network))) this.refreshHosts(id);
  };

  constructor(
    private readonly db: Db,
    private readonly vms: VmManager,
    private readonly log: (msg: string, extra: Record<string, unknown>) => void,
  ) {
    this.switch = new Switch(log);
  }

  /** Puts every network on the switch and follows the VMs: ports for the cards of the running ones. */
  start(): void {
    for (const n of this.list()) this.publish(n);
    this.unfollow = followVms(this.vms, { changed: this.onVm, deleted: this.onVmDeleted });
  }

  close(): void {
    this.unfollow?.();
    for (const u of this.uplinks.values()) u.stop();
    this.uplinks.clear();
    this.switch.close();
  }

  list(): NetworkRow[] {
    return (this.db.prepare('SELECT * FROM networks ORDER BY name').all() as Record<string, unknown>[]).map(fromRow);
  }

  /** The networks `who` may see: their own and shared ones (admins: all). */
  visibleTo(who: Who): NetworkRow[] {
    return this.list().filter((n) => who.role === 'admin' || n.ownerId === who.id || n.shared);
  }

  /** A network by name or id, if `who` may see it; someone else's unshared network is "not found". */
  get(ref: string, who: Who): NetworkRow {
    const r = this.db.prepare('SELECT * FROM networks WHERE name = ? OR id = ?').get(ref, ref) as
      Record<string, unknown> | undefined;
    const n = r && fromRow(r);
    if (!n || (who.role !== 'admin' && n.ownerId !== who.id && !n.shared)) throw notFound(`no network '${ref}'`);
    return n;
  }

  /** A network `who` may change or delete: its owner or an admin. */
  private owned(ref: string, who: Who): NetworkRow {
    const n = this.get(ref, who);
    if (who.role !== 'admin' && n.ownerId !== who.id) throw forbidden(`network '${n.name}' belongs to another user`);
    return n;
  }

  create(who: Who, req: NetworkRequest): NetworkRow {
    if (!NETWORK_NAME_RE.test(req.name))
      throw badRequest('network name must be 1-31 characters: lower-case letters, digits or "-", starting with a letter');
    if (req.shared && who.role !== 'admin') throw forbidden('only admins may share a network with everybody');
    if (req.nat && req.isolated === undefined) req.isolated = false;
    if (who.role !== 'admin') {
      const mine = this.list().filter((n) => n.ownerId === who.id).length;
      if (mine >= MAX_NETWORKS_PER_USER)
        throw conflict(`you already own ${mine} networks (at most ${MAX_NETWORKS_PER_USER}): delete one first`);
    }
    if (this.list().some((n) => n.name === req.name)) throw conflict(`a network named '${req.name}' already exists`);
    let subnet: Subnet;
    try {
      subnet = req.subnet ? parseSubnet(req.subnet) : this.freeSubnet();
    } catch (e) {
      throw badRequest((e as Error).message);
    }
    const row: NetworkRow = {
      id: randomBytes(6).toString('hex'), name: req.name, ownerId: who.id, subnet: subnetText(subnet),
      nat: !!req.nat, isolated: !!req.isolated, shared: !!req.shared, createdAt: new Date().toISOString(),
    };
    try {
      this.db.prepare(`INSERT INTO networks (id, name, owner_id, subnet, nat, isolated, shared, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).run(row.id, row.name, row.ownerId, row.subnet, +row.nat, +row.isolated,
        +row.shared, row.createdAt);
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE')
        throw conflict(`a network named '${req.name}' already exists`);
      throw e;
    }
    this.publish(row);
    return row;
  }

  delete(ref: string, who: Who): void {
    const n = this.owned(ref, who);
    const users = this.leases({ networkId: n.id }).map((l) => this.vms.records.get(l.vmId)?.name ?? l.vmId);
    if (users.length)
      throw conflict(`network '${n.name}' still has VMs on it (${[...new Set(users)].join(', ')}): delete them first`);
    this.db.prepare('DELETE FROM networks WHERE id = ?').run(n.id);
    this.uplinks.get(n.id)?.stop();
    this.uplinks.delete(n.id);
    this.switch.removeNetwork(n.id);
  }

  /** The network ids for a new VM's cards, checking `who` may attach to each and that each has a free lease. */
  forNewVm(who: Who, refs: string[]): string[] {
    if (refs.length > MAX_CARDS) throw badRequest(`a VM may have at most ${MAX_CARDS} networks`);
    const out = refs.map((ref) => {
      const n = this.get(ref, who);
      if (who.role !== 'admin' && n.ownerId !== who.id && !n.shared)
        throw forbidden(`network '${ref}' belongs to another user`);
      if (this.leases({ networkId: n.id }).length >= leaseSlots(parseSubnet(n.subnet)))
        throw conflict(`network '${n.name}' has no free address left (${n.subnet})`);
      return n.id;
    });
    if (new Set(out).size !== out.length) throw badRequest('each network may be named once');
    return out;
  }

  /** Gives each card of a new VM its fixed lease (derived from the VM's id; the next free address on a clash). */
  assignLeases(vm: VmRecord): Lease[] {
    const nics = vm.spec.nics ?? [];
    const insert = this.db.prepare('INSERT INTO network_leases (vm_id, card, network_id, mac, ip) VALUES (?, ?, ?, ?, ?)');
    this.db.transaction(() => {
      nics.forEach((nic, card) => {
        if (this.leases({ vmId: vm.id }).some((l) => l.card === card)) return;
        const n = this.byId(nic.network);
        if (!n) throw unprocessable(`VM '${vm.name}' names a network that no longer exists`);
        const subnet = parseSubnet(n.subnet);
        const taken = new Set(this.leases({ networkId: n.id }).map((l) => ipNumber(l.ip)));
        const ip = chooseLease(subnet, vm.id, taken);
        if (ip === undefined) throw conflict(`network '${n.name}' has no free address left (${n.subnet})`);
        insert.run(vm.id, card, n.id, nic.mac, ipText(ip));
      });
    })();
    for (const id of new Set(nics.map((n) => n.network))) this.refreshHosts(id);
    return this.leases({ vmId: vm.id });
  }

  leases(where: { vmId?: string; networkId?: string }): Lease[] {
    const rows = where.vmId
      ? this.db.prepare('SELECT * FROM network_leases WHERE vm_id = ? ORDER BY card').all(where.vmId)
      : this.db.prepare('SELECT * FROM network_leases WHERE network_id = ? ORDER BY ip').all(where.networkId);
    return (rows as Record<string, unknown>[]).map(leaseRow);
  }

  /** Carries these host ports to guests on a --nat network (the switch's NAT, and passt's listening list). */
  applyForwards(networkId: string, list: Forward[]): void {
    this.forwardsFor.set(networkId, list);
    this.switch.setForwards(networkId, list);
    this.uplinks.get(networkId)?.setForwards(list);
  }

  /** The switch's view of a network's ports: counters, connected or not. */
  ports(networkId: string): PortStatus[] {
    return this.switch.portsOf(networkId);
  }

  byId(id: string): NetworkRow | undefined {
    const r = this.db.prepare('SELECT * FROM networks WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r && fromRow(r);
  }

  /** A /24 in 10.77.0.0–10.254.0.0 no other network uses. */
  private freeSubnet(): Subnet {
    const used = this.list().map((n) => parseSubnet(n.subnet));
    for (let b = 77; b < 255; b++) {
      for (let c = 0; c < 256; c++) {
        const s = parseSubnet(`10.${b}.${c}.0/24`);
        if (!used.some((u) => overlaps(u, s))) return s;
      }
    }
    return parseSubnet(DEFAULT_SUBNET);
  }

  private publish(n: NetworkRow): void {
    this.switch.setNetwork({
      id: n.id, name: n.name, subnet: parseSubnet(n.subnet), gatewayMac: gatewayMac(n.id), nat: n.nat,
      isolated: n.isolated,
    }, this.hosts(n.id));
    this.switch.setForwards(n.id, this.forwardsFor.get(n.id) ?? []);
    if (n.nat && !this.uplinks.has(n.id)) {
      const natIp = gatewayOf(parseSubnet(n.subnet));
      this.uplinks.set(n.id, new PasstUplink({
        natIp,
        forwards: this.forwardsFor.get(n.id) ?? [],
        onLink: (sock) => this.switch.setUplink(n.id, sock, PASST_MAC),
        log: (msg, extra) => this.log(msg, { network: n.name, ...extra }),
      }));
    }
  }

  private hosts(networkId: string): Map<string, number> {
    const m = new Map<string, number>();
    for (const l of this.leases({ networkId })) {
      const vm = this.vms.records.get(l.vmId);
      if (vm) m.set(vm.name.toLowerCase(), ipNumber(l.ip));
    }
    return m;
  }

  private refreshHosts(networkId: string): void {
    const n = this.byId(networkId);
    if (n) this.publish(n);
  }

  /** Ports for the cards of a VM whose QEMU runs (or is starting); none otherwise. */
  private syncPorts(vm: VmRecord): void {
    const live = vm.state === 'starting' || vm.state === 'running' || vm.state === 'paused' || vm.state === 'stopping';
    const nics = vm.spec.nics ?? [];
    if (!live || nics.length === 0) {
      this.dropPorts(vm.id, nics.length);
      return;
    }
    let leases = this.leases({ vmId: vm.id });
    if (leases.length < nics.length) leases = this.assignLeases(vm); // a VM made by restore --as (createLike)
    const paths = this.vms.paths(vm);
    for (const l of leases) {
      const id = `${vm.id}/${l.card}`;
      if (this.switch.hasPort(id)) {
        // Added while its QEMU was starting (no socket yet): dialled now that QEMU is up, not at the next retry.
        this.switch.dialNow(id);
        continue;
      }
      this.switch.addPort(l.networkId, {
        id, vmName: vm.name, mac: l.mac, ip: ipNumber(l.ip), socketPath: nicSocket(paths, l.card),
      });
    }
  }

  private dropPorts(vmId: string, cards = MAX_CARDS): void {
    for (let i = 0; i < Math.max(cards, MAX_CARDS); i++) this.switch.removePort(`${vmId}/${i}`);
  }
}

export const gatewayText = (subnet: string): string => ipText(gatewayOf(parseSubnet(subnet)));
