// Where one VM's files live inside the data directory. The folder is mode 0700: the QMP and shell sockets and the
// SPICE password in it can be read only by the user Oriel runs as, and clients reach them only through the server.
import { createHash } from 'node:crypto';
import { join } from 'node:path';

const SHM = '/dev/shm';

export interface VmPaths {
  dir: string;
  disk: string;
  qmp: string;
  /** A unix socket: only VMs started by an older server (spice-endpoint.ts). */
  spice: string;
  /** The loopback port of the VM's SPICE server, and its password for this boot (spice-endpoint.ts). */
  spicePort: string;
  spiceSecret: string;
  serial: string;
  serialLog: string;
  /** The serial log's rotated predecessor (serial-log.ts). */
  serialLogPrev: string;
  shell: string;
  /** qemu-guest-agent's port (images with the 'guest-agent' device). */
  guestAgent: string;
  /** The OpenCL remoting port (spec.opencl): QEMU serves it, the VM's helper (src/remoting) connects. */
  opencl: string;
  /** The OpenCL zero-copy window (0600, spec.opencl): QEMU's ivshmem-plain RAM, mapped by the helper too. In
   * /dev/shm, not the VM's folder: userfaultfd (live checkpoints, lazy restores) tracks shmem, not files on disk. */
  openclWindow: string;
  qemuLog: string;
  pidfile: string;
  /** The UEFI variable store (firmware uefi; media-args.ts). */
  vars: string;
}

/** The unix socket QEMU listens on for card `card`'s frames (-netdev stream,server=on); the switch dials it. */
export const nicSocket = (p: VmPaths, card: number): string => join(p.dir, `net${card}.sock`);

export function vmPaths(dataDir: string, vmId: string): VmPaths {
  const dir = join(dataDir, 'vms', vmId);
  return {
    dir,
    disk: join(dir, 'disk.qcow2'),
    qmp: join(dir, 'qmp.sock'),
    spice: join(dir, 'spice.sock'),
    spicePort: join(dir, 'spice.port'),
    spiceSecret: join(dir, 'spice.secret'),
    serial: join(dir, 'serial.sock'),
    serialLog: join(dir, 'serial.log'),
    serialLogPrev: join(dir, 'serial.log.1'),
    shell: join(dir, 'shell.sock'),
    guestAgent: join(dir, 'qga.sock'),
    opencl: join(dir, 'opencl.sock'),
    openclWindow: join(SHM, `oriel-${createHash('sha256').update(dataDir).digest('hex').slice(0, 8)}-${vmId}-opencl`),
    qemuLog: join(dir, 'qemu.log'),
    pidfile: join(dir, 'qemu.pid'),
    vars: join(dir, 'OVMF_VARS.fd'),
  };
}
