// `oriel vm forward VM HOSTPORT:GUESTPORT`: a port on the host's loopback that reaches a guest's port. The VM's card
// must be on a --nat network: its passt listens on 127.0.0.1:HOSTPORT and the switch carries each connection to the
// guest (network/nat.ts). Rows in SQLite; passt starts again with the new list when it changes.
import { createServer } from 'node:net';
import type { Db } from '../../db/database.ts';
import type { VmRecord } from '../../vm/records.ts';
import type { VmManager } from '../../vm/manager.ts';
import { badRequest, conflict, notFound } from '../../errors.ts';
import type { Forward } from '../../network/nat.ts';
import { ipNumber } from '../../network/frames.ts';
import type { Networks } from './networks.ts';

export interface ForwardRow {
  vmId: string;
  card: number;
  proto: 'tcp' | 'udp';
  hostPort: number;
  guestPort: number;
}

const fromRow = (r: Record<string, unknown>): ForwardRow => ({
  vmId: r.vm_id as string, card: r.card as number, proto: r.proto as 'tcp' | 'udp', hostPort: r.host_port as number,
  guestPort: r.guest_port as number,
});

/** Host ports below this need privileges: not for forwards. */
export const MIN_HOST_PORT = 1024;

export class Forwards {
  constructor(private readonly db: Db, private readonly networks: Networks, vms: VmManager) {
    this.applyAll();
    // A deleted VM's forwards went with it (ON DELETE CASCADE): passt stops listening for them.
    vms.on('deleted', () => this.applyAll());
  }

  /** Hands every --nat network its forwards (at server start, before passt starts, and after a VM is deleted). */
  applyAll(): void {
    for (const n of this.networks.list()) if (n.nat) this.networks.applyForwards(n.id, this.ofNetwork(n.id));
  }

  list(vmId?: string): ForwardRow[] {
    const rows = vmId
      ? this.db.prepare('SELECT * FROM network_forwards WHERE vm_id = ? ORDER BY host_port').all(vmId)
      : this.db.prepare('SELECT * FROM network_forwards ORDER BY host_port').all();
    return (rows as Record<string, unknown>[]).map(fromRow);
  }

  /** The forwards of one network, as the switch and passt take them. */
  ofNetwork(networkId: string): Forward[] {
    const leases = new Map(this.networks.leases({ networkId }).map((l) => [`${l.vmId}/${l.card}`, l]));
    return this.list().flatMap((f) => {
      const l = leases.get(`${f.vmId}/${f.card}`);
      return l ? [{ proto: f.proto, port: f.hostPort, vmIp: ipNumber(l.ip), guestPort: f.guestPort }] : [];
    });
  }

  async add(vm: VmRecord, req: { hostPort: number; guestPort: number; proto: 'tcp' | 'udp' }): Promise<ForwardRow> {
    const { hostPort, guestPort, proto } = req;
    if (hostPort < MIN_HOST_PORT) throw badRequest(`the host port must be ${MIN_HOST_PORT} or above`);
    const leases = this.networks.leases({ vmId: vm.id });
    const lease = leases.find((l) => this.networks.byId(l.networkId)?.nat);
    if (!lease) throw conflict(`VM '${vm.name}' has no card on a --nat network: forwards go through one`);
    if (this.list().some((f) => f.proto === proto && f.hostPort === hostPort))
      throw conflict(`host port ${proto}/${hostPort} is already forwarded`);
    if (!(await portFree(proto, hostPort))) throw conflict(`host port ${proto}/${hostPort} is in use on the host`);
    this.db.prepare('INSERT INTO network_forwards (vm_id, card, proto, host_port, guest_port) VALUES (?, ?, ?, ?, ?)')
      .run(vm.id, lease.card, proto, hostPort, guestPort);
    this.networks.applyForwards(lease.networkId, this.ofNetwork(lease.networkId));
    return { vmId: vm.id, card: lease.card, proto, hostPort, guestPort };
  }

  remove(vm: VmRecord, proto: 'tcp' | 'udp', hostPort: number): void {
    const f = this.list(vm.id).find((x) => x.proto === proto && x.hostPort === hostPort);
    if (!f) throw notFound(`VM '${vm.name}' has no forward of host port ${proto}/${hostPort}`);
    this.db.prepare('DELETE FROM network_forwards WHERE proto = ? AND host_port = ?').run(proto, hostPort);
    const l = this.networks.leases({ vmId: vm.id }).find((x) => x.card === f.card);
    if (l) this.networks.applyForwards(l.networkId, this.ofNetwork(l.networkId));
  }
}

/** Nothing listens on the host's loopback at this port (TCP; UDP is tried as a bind too). */
async function portFree(proto: 'tcp' | 'udp', port: number): Promise<boolean> {
  if (proto === 'udp') {
    const { createSocket } = await import('node:dgram');
    return new Promise((resolve) => {
      const s = createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  }
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}
