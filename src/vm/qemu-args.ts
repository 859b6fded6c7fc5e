// Turns a VM spec into QEMU's command line. One place decides the device model every part of Oriel relies on:
// the SPICE server on loopback TCP with a per-boot password, the agent's virtio-serial port, two serial ports
// (console + command shell), and the disk as a named qcow2 block node (block jobs address it by node name); plus
// the ports an image asks for, network cards, install media and firmware (media-args.ts), and for desktop (qxl)
// VMs a sound card and USB redirection ports.
import { DEFAULT_OPENCL_WINDOW_MIB, hasDisk, type VmSpec } from './spec.ts';
import { mediaArgs } from './media-args.ts';
import { nicSocket, type VmPaths } from './paths.ts';
import { KVM_CPU } from './accel.ts';
import { HUGE_PAGE_MIB } from './hugepages.ts';
import { RAM_ID, type RamBacking } from './ram-backing.ts';
import { spiceArgs, type SpiceEndpoint } from './spice-endpoint.ts';

export { newSpiceEndpoint } from './spice-endpoint.ts';

export const DISK_NODE = 'disk0';

/** Guest RAM (ram-backing.ts). Huge pages: a hugetlb memfd as the machine's memory, touched at start (prealloc) so
 * the first live snapshot's pause does not fault in the pages the guest never used. Not for an incoming migration (a
 * restore): its stream writes the pages, a postcopy discards them all first, and the restore fills what is left
 * afterwards (checkpoint/restore.ts); zeroing 2 GiB at start cost ~70 ms of it. Ordinary memory named pc.ram is
 * QEMU's default RAM, as `-m` alone makes it. */
function ramArgs(spec: VmSpec, ram: RamBacking, incoming: boolean): string[] {
  if (ram.huge) {
    return ['-machine', `q35,memory-backend=${ram.id}`,
      '-object', `memory-backend-memfd,id=${ram.id},size=${spec.memoryMiB}M,hugetlb=on,` +
        `hugetlbsize=${HUGE_PAGE_MIB}M,prealloc=${incoming ? 'off' : 'on'}`];
  }
  if (ram.id === RAM_ID) return ['-machine', 'q35'];
  return ['-machine', `q35,memory-backend=${ram.id}`, '-object', `memory-backend-ram,id=${ram.id},size=${spec.memoryMiB}M`];
}

export function qemuArgs(
  name: string, spec: VmSpec, paths: VmPaths, accel: 'kvm' | 'tcg', spice: SpiceEndpoint | undefined,
  opts: { incoming?: boolean; ram?: RamBacking } = {},
): string[] {
  const a: string[] = [
    '-name', `${name},process=oriel-${name}`,
    ...ramArgs(spec, opts.ram ?? { huge: !!spec.hugepages, id: RAM_ID }, !!opts.incoming),
    // TCG with one thread per vCPU uses both host cores for an SMP guest.
    '-accel', accel === 'kvm' ? 'kvm' : 'tcg,thread=multi',
    '-cpu', accel === 'kvm' ? KVM_CPU : 'max',
    '-m', String(spec.memoryMiB),
    '-smp', String(spec.cpus),
    '-nodefaults', '-no-user-config',
    '-display', 'none',
    '-vga', spec.display,
    ...qxlHeads(spec),
    // ttyS0: the guest console, kept in serial.log (this boot only: removed before QEMU starts; appended to, so that
    // serial-log.ts can cap it) and reachable as a socket for an interactive terminal.
    '-chardev', `socket,id=serial0,path=${paths.serial},server=on,wait=off,logfile=${paths.serialLog},logappend=on`,
    '-serial', 'chardev:serial0',
    // ttyS1: the command shell the tiny guest serves for `oriel vm exec`.
    '-chardev', `socket,id=shell0,path=${paths.shell},server=on,wait=off`,
    '-serial', 'chardev:shell0',
    // The SPICE agent's port: spice-server looks for exactly this name (spice-protocol vd_agent.h).
    '-device', 'virtio-serial-pci,id=vser0',
    '-chardev', 'spicevmc,id=vdagent,name=vdagent',
    '-device', 'virtserialport,chardev=vdagent,name=com.redhat.spice.0',
    ...guestPorts(spec, paths),
    ...nics(spec, paths),
    ...usbRedirection(spec),
    ...(spec.devices?.includes('spice-audio')
      // Sound both ways through the SPICE playback and record channels: an HDA controller with a speaker + mic codec.
      ? ['-audiodev', 'spice,id=snd0', '-device', 'ich9-intel-hda', '-device', 'hda-duplex,audiodev=snd0']
      : []),
    ...spiceArgs(paths, spice),
    '-qmp', `unix:${paths.qmp},server=on,wait=off`,
    '-pidfile', paths.pidfile,
    '-device', 'virtio-rng-pci',
  ];
  if (spec.kernel) {
    a.push('-kernel', spec.kernel, '-initrd', spec.initrd!);
    if (spec.append) a.push('-append', spec.append);
  }
  a.push(...mediaArgs(spec, paths));
  if (hasDisk(spec)) {
    a.push(
      '-blockdev', `driver=qcow2,node-name=${DISK_NODE},file.driver=file,file.filename=${paths.disk}`,
      '-device', `virtio-blk-pci,drive=${DISK_NODE},id=${DISK_NODE}${spec.kernel ? '' : ',bootindex=0'}`,
    );
  }
  if (spec.opencl) {
    // OpenCL remoting: calls travel this port; the VM's helper (src/remoting) connects to the socket in the VM's
    // 0700 folder. The port's name is the guest ICD's (src/remoting/protocol.ts PORT_NAME).
    a.push('-chardev', `socket,id=opencl0,path=${paths.opencl},server=on,wait=off`,
      '-device', 'virtserialport,chardev=opencl0,name=org.oriel.opencl.0');
    // The zero-copy window: a file (pre-created 0600 by opencl-window.ts) as the RAM of an ivshmem-plain device, BAR2
    // in the guest; the helper maps the same file. master=on: its RAM migrates, so checkpoints still work.
    const mib = spec.openclWindowMiB ?? DEFAULT_OPENCL_WINDOW_MIB;
    a.push('-object', `memory-backend-file,id=oclwin,mem-path=${paths.openclWindow},size=${mib}M,share=on`,
      '-device', 'ivshmem-plain,memdev=oclwin,master=on,id=oclwin0');
  }
  return a;
}

/** A virtio-net card per network. QEMU listens on the card's socket in the VM's 0700 folder and the server's switch
 * dials it (stream framing: be32 length + frame). QEMU 7.2's stream client never reconnects, its server takes a new
 * peer after each disconnect: so a restarted server dials again and the guest keeps its link. */
function nics(spec: VmSpec, paths: VmPaths): string[] {
  return (spec.nics ?? []).flatMap((n, i) => [
    '-netdev', `stream,id=${netdevId(i)},server=on,addr.type=unix,addr.path=${nicSocket(paths, i)}`,
    '-device', `virtio-net-pci,netdev=${netdevId(i)},mac=${n.mac},id=nic${i},romfile=`,
  ]);
}

/** The QEMU id of card `card`'s netdev (QMP's NETDEV_STREAM_* events name it). */
export const netdevId = (card: number): string => `net${card}`;

/** USB ports a SPICE client can plug devices into, for desktop (qxl) VMs: an xHCI controller and
 * USB_REDIR_PORTS `usb-redir` devices, each a SPICE usbredir channel (one device per port). */
export const USB_REDIR_PORTS = 2;

function usbRedirection(spec: VmSpec): string[] {
  if (spec.display !== 'qxl') return [];
  const a = ['-device', 'qemu-xhci,id=usb0'];
  for (let i = 0; i < USB_REDIR_PORTS; i++) {
    a.push('-chardev', `spicevmc,id=usbredir${i},name=usbredir`, '-device', `usb-redir,chardev=usbredir${i},bus=usb0.0`);
  }
  return a;
}

/** Monitors a qxl VM can show: its qxl-vga offers this many outputs (QEMU passes max_outputs to spice-server, whose
 * default of 0 means one). All share one primary surface; a head beyond the first stays disconnected in the guest
 * until a SPICE client asks for it through the agent's monitors config (the display channel's MONITORS_CONFIG then
 * lists each head's region of the surface). */
export const QXL_HEADS = 2;

function qxlHeads(spec: VmSpec): string[] {
  return spec.display === 'qxl' ? ['-global', `qxl-vga.max_outputs=${QXL_HEADS}`] : [];
}

/** The virtio-serial ports an image asks for (manifest `devices`), on the same bus as the SPICE agent's. */
function guestPorts(spec: VmSpec, paths: VmPaths): string[] {
  const a: string[] = [];
  if (spec.devices?.includes('guest-agent')) {
    // qemu-guest-agent: a unix socket in the VM's 0700 folder, opened only by the server (guest-agent.ts).
    a.push('-chardev', `socket,id=qga0,path=${paths.guestAgent},server=on,wait=off`,
      '-device', 'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0');
  }
  if (spec.devices?.includes('spice-webdav')) {
    // Folder sharing: spice-server exposes this port to SPICE clients as a port channel of the same name.
    a.push('-chardev', 'spiceport,id=webdav,name=org.spice-space.webdav.0',
      '-device', 'virtserialport,chardev=webdav,name=org.spice-space.webdav.0');
  }
  return a;
}
