// Where one VM's files live inside the data directory. The folder is mode 0700: the SPICE, QMP and shell
// sockets in it can be opened only by the user Oriel runs as, and clients reach them only through the server.
import { join } from 'node:path';

export interface VmPaths {
  dir: string;
  disk: string;
  qmp: string;
  spice: string;
  serial: string;
  serialLog: string;
  /** The serial log's rotated predecessor (serial-log.ts). */
  serialLogPrev: string;
  shell: string;
  /** qemu-guest-agent's port (images with the 'guest-agent' device). */
  guestAgent: string;
  qemuLog: string;
  pidfile: string;
  /** The UEFI variable store (firmware uefi; media-args.ts). */
  vars: string;
}

export function vmPaths(dataDir: string, vmId: string): VmPaths {
  const dir = join(dataDir, 'vms', vmId);
  return {
    dir,
    disk: join(dir, 'disk.qcow2'),
    qmp: join(dir, 'qmp.sock'),
    spice: join(dir, 'spice.sock'),
    serial: join(dir, 'serial.sock'),
    serialLog: join(dir, 'serial.log'),
    serialLogPrev: join(dir, 'serial.log.1'),
    shell: join(dir, 'shell.sock'),
    guestAgent: join(dir, 'qga.sock'),
    qemuLog: join(dir, 'qemu.log'),
    pidfile: join(dir, 'qemu.pid'),
    vars: join(dir, 'OVMF_VARS.fd'),
  };
}
