// The spec a VM restored from object storage gets on this host: the recorded one, without what belonged to the other
// server. Its host files (kernel, initrd, base image) must be here at the same paths (the same image cache), and the
// VM manager checks they are in the folders VMs may use. Its network cards go on this server's networks of the same
// names (the record names them), with the same MACs: the guest's own card state, restored from the stream, has them.
import { existsSync } from 'node:fs';
import type { VmSpec } from '../../vm/spec.ts';
import type { RemoteRecord } from './record.ts';

export function specForThisHost(
  vm: RemoteRecord['vm'],
  networks: ((names: string[]) => string[]) | undefined,
): VmSpec {
  const { spec, name: vmName } = vm;
  if (spec.template || spec.fromTemplate)
    throw new Error(`VM '${vmName}' is a template or a linked clone: it cannot be restored from object storage`);
  for (const [what, f] of [['kernel', spec.kernel], ['initrd', spec.initrd], ['base image', spec.baseDisk]] as const) {
    if (f && !existsSync(f)) {
      throw new Error(
        `VM '${vmName}' was made from ${spec.image && spec.image !== 'path' ? `image '${spec.image}'` : 'a host file'} ` +
          `whose ${what} ${f} is not on this host: build or copy it here first`,
      );
    }
  }
  const { nics, template: _t, fromTemplate: _f, ...rest } = spec;
  // The drive stays (it is part of the device model), the disc in it was the other server's.
  const out: VmSpec = { ...rest, ...(spec.cdrom ? { cdrom: null } : {}) };
  if (!nics?.length) return out;
  const names = nics.map((_, i) => vm.networks?.[i]);
  if (!names.every((n): n is string => typeof n === 'string'))
    throw new Error(`VM '${vmName}' had network cards, and its record does not name their networks (an older upload)`);
  if (!networks) throw new Error(`VM '${vmName}' had network cards: this server cannot place them`);
  let ids: string[];
  try {
    ids = networks(names);
  } catch (e) {
    throw new Error(`VM '${vmName}' had cards on network${names.length > 1 ? 's' : ''} ${names.map((n) => `'${n}'`)
      .join(', ')}: create ${names.length > 1 ? 'networks' : 'a network'} of that name here first ` +
      `(${(e as Error).message})`);
  }
  return { ...out, nics: nics.map((n, i) => ({ network: ids[i]!, mac: n.mac })) };
}
