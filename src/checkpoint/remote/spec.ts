// The spec a VM restored from object storage gets on this host: the recorded one, without what belonged to the other
// server. Its host files (kernel, initrd, base image) must be here at the same paths (the same image cache), and the
// VM manager checks they are in the folders VMs may use.
import { existsSync } from 'node:fs';
import type { VmSpec } from '../../vm/spec.ts';

export function specForThisHost(spec: VmSpec, vmName: string): VmSpec {
  if (spec.nics?.length)
    throw new Error(`VM '${vmName}' had network cards: restoring a networked VM from object storage is not supported yet`);
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
  const { nics: _n, template: _t, fromTemplate: _f, ...rest } = spec;
  // The drive stays (it is part of the device model), the disc in it was the other server's.
  return { ...rest, ...(spec.cdrom ? { cdrom: null } : {}) };
}
