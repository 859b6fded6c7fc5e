// A VM's cards as the VM view shows them: the network's name, the card's MAC and its fixed lease.
import type { VmRecord } from '../../vm/records.ts';
import type { ServerContext } from '../context.ts';

export function vmNics(ctx: Pick<ServerContext, 'networks'>, vm: VmRecord) {
  const leases = ctx.networks.leases({ vmId: vm.id });
  return (vm.spec.nics ?? []).map((nic, card) => ({
    network: ctx.networks.byId(nic.network)?.name ?? nic.network,
    mac: nic.mac,
    ip: leases.find((l) => l.card === card)?.ip ?? null,
  }));
}
