// QEMU arguments of a VM's firmware and CD-ROM drive (qemu-args.ts adds them).
// UEFI: Debian's OVMF (package ovmf), its code read-only and shared, the variable store (boot entries, settings)
// a per-VM copy in the VM's folder, made at create from OVMF_VARS (or the template's store for a linked clone).
// In a checkpoint the store travels in the migration stream: each pflash is a RAM block, and QEMU writes the
// whole store back to the VARS file after loading it (hw/block/pflash_cfi01.c).
// CD-ROM: an ide-cd on q35's AHCI bus ide.2, id `cd0` (QMP media changes address it), booted after the disk: a blank
// disk fails to boot and the firmware goes on to the CD; once an OS is installed the disk boots first.
import { existsSync } from 'node:fs';
import { unprocessable } from '../errors.ts';
import type { VmPaths } from './paths.ts';
import type { VmSpec } from './spec.ts';

export const OVMF_DIR = process.env.ORIEL_OVMF_DIR || '/usr/share/OVMF';
export const OVMF_CODE = `${OVMF_DIR}/OVMF_CODE_4M.fd`;
export const OVMF_VARS = `${OVMF_DIR}/OVMF_VARS_4M.fd`;
export const CDROM_ID = 'cd0';
/** The block node of the medium given at QEMU's start (a medium inserted later gets one QEMU names). */
const CDROM_NODE = 'cd0-medium';

/** QEMU's -blockdev/-drive option values take a comma as ",,". */
const opt = (v: string) => v.replace(/,/g, ',,');

export function checkUefi(): void {
  for (const f of [OVMF_CODE, OVMF_VARS]) {
    if (!existsSync(f))
      throw unprocessable(`UEFI firmware is not installed on the server: ${f} is missing (Debian package ovmf)`);
  }
}

export function mediaArgs(spec: VmSpec, paths: VmPaths): string[] {
  const a: string[] = [];
  if (spec.firmware === 'uefi') {
    a.push(
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${opt(OVMF_CODE)}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${opt(paths.vars)}`,
    );
  }
  if (spec.cdrom !== undefined) {
    const medium = spec.cdrom
      ? ['-blockdev', `driver=raw,node-name=${CDROM_NODE},read-only=on,file.driver=file,`
        + `file.filename=${opt(spec.cdrom.file)},file.read-only=on`]
      : [];
    a.push(...medium,
      '-device', `ide-cd,id=${CDROM_ID},bus=ide.2${spec.cdrom ? `,drive=${CDROM_NODE}` : ''}${spec.kernel ? '' : ',bootindex=1'}`);
  }
  return a;
}
