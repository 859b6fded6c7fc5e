// What a VM is made of, as a person asks for it (VmRequest) and as Oriel stores it once resolved (VmSpec).
import { createHash } from 'node:crypto';
import { totalmem, availableParallelism } from 'node:os';
import type { z } from 'zod';
import { vmCreateSchema } from '../api/vms.ts';
import type { GuestDevice, GuestExec } from './images/types.ts';

// The request's shape and the state list are the API contract's (src/api/vms.ts); the host-dependent rules are here.
export { VM_ID_RE, VM_NAME_RE, VM_STATES, type VmState } from '../api/vms.ts';

export const MIN_MEMORY_MIB = 64;
/** QEMU cannot give a guest more than the host has; keep a margin for QEMU itself and the host. */
export const maxMemoryMiB = (): number => Math.max(MIN_MEMORY_MIB, Math.floor((totalmem() / 2 ** 20) * 0.9));
export const maxCpus = (): number => Math.max(1, availableParallelism() * 4);

/** A create request as the VM manager takes it: the networks are resolved by the server (names to ids, checked
 * against the caller) and come in VmCreateOptions instead. */
export const vmRequestSchema = vmCreateSchema
  .omit({ networks: true })
  .superRefine((r, ctx) => {
    if (!r.image && !r.kernel && !r.cdrom && !r.from && r.diskBytes === undefined)
      ctx.addIssue({ code: 'custom', message: 'give an image, or a kernel and an initrd (or a cdrom, diskBytes, or from a template)' });
    if (r.from && (r.image || r.kernel || r.cdrom || r.diskBytes !== undefined || r.firmware)) {
      ctx.addIssue({ code: 'custom', path: ['from'],
        message: 'a linked clone takes its disk and firmware from the template: no image, kernel, cdrom, diskBytes or firmware' });
    }
    if (r.diskBytes !== undefined && r.image)
      ctx.addIssue({ code: 'custom', path: ['diskBytes'], message: 'diskBytes makes an empty disk: not with an image (grow it with resize)' });
    if (r.kernel && !r.initrd) ctx.addIssue({ code: 'custom', path: ['initrd'], message: 'a kernel needs an initrd' });
    if (r.initrd && !r.kernel) ctx.addIssue({ code: 'custom', path: ['kernel'], message: 'an initrd needs a kernel' });
    if (r.append !== undefined && !r.kernel && !r.image)
      ctx.addIssue({ code: 'custom', path: ['append'], message: 'append needs a kernel' });
    const maxMem = maxMemoryMiB();
    if (r.memoryMiB !== undefined && (r.memoryMiB < MIN_MEMORY_MIB || r.memoryMiB > maxMem)) {
      ctx.addIssue({
        code: 'custom',
        path: ['memoryMiB'],
        message: `memory must be between ${MIN_MEMORY_MIB} and ${maxMem} MiB on this host`,
      });
    }
    if (r.hugepages && r.memoryMiB !== undefined && r.memoryMiB % 2 !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['memoryMiB'],
        message: 'with hugepages, memory must be a multiple of 2 MiB (the huge page size)',
      });
    }
    const cpuMax = maxCpus();
    if (r.cpus !== undefined && (r.cpus < 1 || r.cpus > cpuMax)) {
      ctx.addIssue({ code: 'custom', path: ['cpus'], message: `cpus must be between 1 and ${cpuMax} on this host` });
    }
  });
export type VmRequest = z.infer<typeof vmRequestSchema>;

/** The resolved, self-contained description QEMU is started from. Paths are absolute. */
export interface VmSpec {
  memoryMiB: number;
  cpus: number;
  display: 'std' | 'qxl';
  /** Guest RAM in 2 MiB huge pages (a hugetlb memfd): true always, false never, unset whenever the server can
   * reserve them (ram-backing.ts). */
  hugepages?: boolean;
  /** OpenCL by API remoting: QEMU serves the port org.oriel.opencl.0 on paths.opencl for the host helper
   * (src/remoting, started with the VM by the server). */
  opencl?: boolean;
  /** The OpenCL zero-copy window's size (MiB, a power of two; default DEFAULT_OPENCL_WINDOW_MIB): an ivshmem-plain
   * device whose RAM is paths.openclWindow, mapped by the helper too. */
  openclWindowMiB?: number;
  accel: 'auto' | 'kvm' | 'tcg';
  /** Name of the built image, or 'path' for a disk given by path. */
  image?: string;
  /** The shared base the per-VM overlay sits on. */
  baseDisk?: string;
  baseFormat?: string;
  /** The overlay's provisioned (virtual) size in bytes: what counts against the owner's disk quota. */
  diskBytes?: number;
  kernel?: string;
  initrd?: string;
  append?: string;
  readyMarker?: string;
  exec?: GuestExec;
  /** Environment of commands run through the guest agent (from the image). */
  execEnv?: Record<string, string>;
  /** Extra virtio-serial ports the image needs (qemu-args.ts). */
  devices?: GuestDevice[];
  /** UEFI (OVMF, the VM's variable store in its folder: media-args.ts); absent: BIOS (SeaBIOS). */
  firmware?: 'uefi';
  /** A CD-ROM drive (absent: none) and the uploaded ISO in it (null: empty). */
  cdrom?: { image: string; file: string } | null;
  /** The VM's disk was created empty (diskBytes), with no base under it. */
  blankDisk?: boolean;
  /** A read-only template: never started; linked clones have its disk as their base. */
  template?: boolean;
  /** The template this VM is a linked clone of (VM names never change). */
  fromTemplate?: { id: string; name: string };
  /** Network cards, one per network (the server's switch, src/network): virtio-net on a stream netdev. */
  nics?: VmNic[];
}

/** A card: the network's id (the server keeps networks) and the card's MAC, fixed when the VM is made. */
export interface VmNic {
  network: string;
  mac: string;
}

/** What trusted code (the server) adds to a request: host paths allowed (admins), the networks' ids, already checked
 * against the caller (the server keeps networks). */
export interface VmCreateOptions {
  hostPaths?: boolean;
  networks?: string[];
}

/** The `nics` of a new VM's spec: a card per network, in order (none: no `nics` at all). */
export const nicsFor = (vmId: string, networks: string[] = []): { nics?: VmNic[] } =>
  networks.length ? { nics: networks.map((network, i) => ({ network, mac: nicMac(vmId, i) })) } : {};

/** A card's MAC: locally administered unicast (02:0e:…), from the VM's id and the card's index, so it is stable. */
export function nicMac(vmId: string, card: number): string {
  const h = createHash('sha256').update(`oriel-mac:${vmId}:${card}`).digest();
  return ['02', '0e', ...Array.from(h.subarray(0, 4), (b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** Whether the VM has a disk (disk.qcow2 in its folder). */
export const hasDisk = (spec: VmSpec): boolean => !!(spec.baseDisk || spec.blankDisk);


/** The OpenCL zero-copy window of a VM without openclWindowMiB. */
export const DEFAULT_OPENCL_WINDOW_MIB = 256;

/** Host memory a running VM holds: its RAM, and its OpenCL window (shared memory the guest can fill). */
export const hostMemoryMiB = (spec: Pick<VmSpec, 'memoryMiB' | 'opencl' | 'openclWindowMiB'>): number =>
  spec.memoryMiB + (spec.opencl ? spec.openclWindowMiB ?? DEFAULT_OPENCL_WINDOW_MIB : 0);
