// Turns a VM spec into QEMU's command line. One place decides the device model every part of Oriel relies on:
// the SPICE server on a unix socket, the agent's virtio-serial port, two serial ports (console + command shell),
// and the disk as a named qcow2 block node (block jobs address it by node name); plus the ports an image asks for.
import { hasDisk, type VmSpec } from './spec.ts';
import { mediaArgs } from './media-args.ts';
import type { VmPaths } from './paths.ts';
import { KVM_CPU } from './accel.ts';
import { HUGE_PAGE_MIB } from './hugepages.ts';

export const DISK_NODE = 'disk0';
/** The memory backend of a huge-page VM (also the RAM block's name in its migration stream). */
const HUGE_RAM_ID = 'ram0';

export function qemuArgs(name: string, spec: VmSpec, paths: VmPaths, accel: 'kvm' | 'tcg'): string[] {
  const a: string[] = [
    '-name', `${name},process=oriel-${name}`,
    // Huge-page RAM: a hugetlb memfd as the machine's memory (hugepages.ts checks the host has them free), touched at
    // start (prealloc) so the first live snapshot's pause does not fault in the pages the guest never used.
    '-machine', spec.hugepages ? `q35,memory-backend=${HUGE_RAM_ID}` : 'q35',
    ...(spec.hugepages
      ? ['-object', `memory-backend-memfd,id=${HUGE_RAM_ID},size=${spec.memoryMiB}M,hugetlb=on,hugetlbsize=${HUGE_PAGE_MIB}M,prealloc=on`]
      : []),
    // TCG with one thread per vCPU uses both host cores for an SMP guest.
    '-accel', accel === 'kvm' ? 'kvm' : 'tcg,thread=multi',
    '-cpu', accel === 'kvm' ? KVM_CPU : 'max',
    '-m', String(spec.memoryMiB),
    '-smp', String(spec.cpus),
    '-nodefaults', '-no-user-config',
    '-display', 'none',
    '-vga', spec.display,
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
    '-spice', `unix=on,addr=${paths.spice},disable-ticketing=on`,
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
  return a;
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
