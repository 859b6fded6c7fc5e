// Changes to an existing VM: its CD-ROM medium (running through QMP, or stopped in its spec), turning a stopped VM
// into a read-only template, growing a stopped VM's disk.
import { chmodSync } from 'node:fs';
import { badRequest, conflict } from '../errors.ts';
import { diskInfo, growDisk } from './disk.ts';
import { CDROM_ID } from './media-args.ts';
import type { VmManager } from './manager.ts';
import { hasDisk } from './spec.ts';
import type { VmRecord } from './records.ts';
import type { Caller } from './uploads/store.ts';

export type MediaChange = { action: 'eject' } | { action: 'insert'; image: string };

/** Ejects or inserts a medium. A running VM must have a CD-ROM drive (made at create with --cdrom); a stopped one
 * gets a drive with the medium at its next start. The choice is kept in the spec either way. */
export async function changeMedia(vms: VmManager, ref: string, change: MediaChange, caller: Caller): Promise<VmRecord> {
  const vm = vms.get(ref);
  const medium = change.action === 'insert' ? vms.images.usable(change.image, caller, 'iso') : undefined;
  const cdrom = medium ? { image: medium.name, file: vms.images.file(medium) } : null;
  if (vm.state === 'running' || vm.state === 'paused') {
    return vms.withQmp(vm.id, async (qmp, cur) => {
      if (cur.spec.cdrom === undefined)
        throw conflict(`VM '${cur.name}' has no CD-ROM drive: stop it and insert the medium, or create it with --cdrom`);
      if (cdrom) {
        await qmp.execute('blockdev-change-medium', {
          id: CDROM_ID, filename: cdrom.file, format: 'raw', 'read-only-mode': 'read-only', force: true,
        });
      } else {
        await qmp.execute('eject', { id: CDROM_ID, force: true });
      }
      return vms.setSpec(cur.id, { ...cur.spec, cdrom });
    }, { action: 'change the medium of' });
  }
  return vms.withStopped(vm.id, 'change the medium of', async (cur) => {
    if (cur.spec.template) throw conflict(`VM '${cur.name}' is a template: its media do not change`);
    return vms.setSpec(cur.id, { ...cur.spec, cdrom });
  });
}

/** A stopped VM with a disk becomes a template: its disk read-only, never started again, the base of linked clones. */
export function makeTemplate(vms: VmManager, ref: string): Promise<VmRecord> {
  return vms.withStopped(ref, 'make a template of', async (cur) => {
    if (cur.spec.template) throw conflict(`VM '${cur.name}' is a template already`);
    if (!hasDisk(cur.spec)) throw conflict(`VM '${cur.name}' has no disk to make a template of`);
    chmodSync(vms.paths(cur).disk, 0o400);
    return vms.setSpec(cur.id, { ...cur.spec, template: true });
  });
}

/** Grows a stopped VM's disk to `bytes`. `admit` (the quota) is asked about the added bytes first. */
export function resizeDisk(
  vms: VmManager, qemuImg: string, ref: string, bytes: number, admit?: (vm: VmRecord, addBytes: number) => void,
): Promise<VmRecord> {
  return vms.withStopped(ref, 'resize', async (cur) => {
    if (cur.spec.template) throw conflict(`VM '${cur.name}' is a template: its disk does not change`);
    if (!hasDisk(cur.spec)) throw conflict(`VM '${cur.name}' has no disk`);
    const file = vms.paths(cur).disk;
    const now = (await diskInfo(qemuImg, file, 'qcow2')).virtualSize;
    if (bytes <= now) throw badRequest(`disks only grow: '${cur.name}' has ${now} bytes, ask for more than that`);
    admit?.(cur, bytes - now);
    await growDisk(qemuImg, file, bytes);
    return vms.setSpec(cur.id, { ...cur.spec, diskBytes: bytes });
  });
}
