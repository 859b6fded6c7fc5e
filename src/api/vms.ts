// Virtual machines: their states, what the API shows of one, what creating one asks, and the actions on them.
import { z } from 'zod';

import { vmNetworksSchema, vmNicSchema } from './networks.ts';
import { VM_STATES } from './states.ts';

export { VM_STATES, type VmState } from './states.ts';
export const vmStateSchema = z.enum(VM_STATES);

/** Emulated graphics cards: std (VGA) or qxl. */
export const DISPLAYS = ['std', 'qxl'] as const;
export const displaySchema = z.enum(DISPLAYS);
export const ACCELS = ['auto', 'kvm', 'tcg'] as const;
export const accelSchema = z.enum(ACCELS);

export const FIRMWARES = ['bios', 'uefi'] as const;
export const firmwareSchema = z.enum(FIRMWARES);
/** The smallest and largest disk a VM may be given (`diskBytes`). */
export const DISK_MIN_BYTES = 1024 * 1024;
export const DISK_MAX_BYTES = 64 * 2 ** 40;

export const VM_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** A VM's id: 12 hex digits. No name may have this shape, so a name never stands for an id. */
export const VM_ID_RE = /^[0-9a-f]{12}$/;

export const vmSchema = z.object({
  id: z.string(),
  name: z.string(),
  owner: z.string(),
  state: vmStateSchema,
  stateReason: z.string().nullable(),
  pid: z.number().nullable(),
  memoryMiB: z.number(),
  cpus: z.number(),
  display: displaySchema,
  accel: accelSchema,
  hugepages: z.boolean().nullable().describe(
    "guest RAM in 2 MiB huge pages: true always (a start fails without them), false never, null (the default) " +
      'whenever the server can reserve them (as root); they make live checkpoints pause the VM a few ms instead of tens',
  ),
  hugepagesNow: z.boolean().nullable().describe("whether the running QEMU's guest RAM is in huge pages; null when not running"),
  hugepagesWhy: z.string().nullable()
    .describe('why a running VM that did not choose is on ordinary memory (e.g. the server does not run as root); else null'),
  opencl: z.boolean().describe('the guest reaches the host\'s OpenCL through API remoting (port org.oriel.opencl.0)'),
  openclWindowMiB: z.number().nullable().describe('the OpenCL zero-copy window (MiB); null without opencl'),
  image: z.string().nullable(),
  firmware: firmwareSchema,
  cdrom: z.string().nullable().describe('the image in the CD-ROM drive; null: no drive or an empty one'),
  diskBytes: z.number().nullable().describe("the disk's provisioned (virtual) size"),
  template: z.boolean().describe('a read-only template: linked clones are made from it, it does not start'),
  from: z.string().nullable().describe('the template this VM is a linked clone of'),
  createdAt: z.string(),
  updatedAt: z.string(),
  networks: z.array(vmNicSchema).optional().describe('network cards: network, MAC, fixed lease'),
});
export type Vm = z.infer<typeof vmSchema>;

/** What creating a VM asks for. The server adds the rules that depend on the host (memory and vCPU ranges) and
 * checks it in the VM manager, so the API, the CLI and the demo share one set of rules and messages. */
export const vmCreateSchema = z
  .object({
    name: z
      .string()
      .regex(VM_NAME_RE, 'name must be 1-63 characters: lower-case letters, digits, ".", "_" or "-", starting with a letter or digit')
      .refine((n) => !VM_ID_RE.test(n), 'name may not be 12 hexadecimal digits (that is the shape of VM ids)'),
    image: z.string().min(1).optional().describe('a built image name (see /api/images), or for admins an absolute path inside a configured image folder'),
    kernel: z.string().min(1).optional().describe('absolute path to a kernel to boot directly (admins, inside a configured image folder)'),
    initrd: z.string().min(1).optional(),
    append: z.string().max(4096).optional().describe('kernel command line (with kernel)'),
    memoryMiB: z.number().int().optional(),
    cpus: z.number().int().optional(),
    display: displaySchema.optional().describe('emulated graphics card: std (VGA) or qxl'),
    accel: accelSchema.optional(),
    cdrom: z.string().min(1).max(64).optional().describe('an uploaded ISO image to put in a CD-ROM drive and boot from'),
    diskBytes: z.number().int().min(DISK_MIN_BYTES).max(DISK_MAX_BYTES).optional()
      .describe('an empty disk of this size (with cdrom, or alone), or the size of the disk an image gives'),
    firmware: firmwareSchema.optional().describe('bios (SeaBIOS, the default) or uefi (OVMF)'),
    from: z.string().min(1).max(64).optional().describe('a template VM: the new VM is a linked clone of its disk'),
    hugepages: z
      .boolean()
      .optional()
      .describe(
        'true: guest RAM always in 2 MiB huge pages; false: never; left out: whenever the server can reserve them ' +
          '(live checkpoints then pause the VM a few ms instead of tens)',
      ),
    opencl: z
      .boolean()
      .optional()
      .describe("OpenCL by API remoting: a virtio-serial port to a host helper running the host's OpenCL (the guest needs "
        + 'the Oriel ICD, as in the tiny-opencl image)'),
    openclWindowMiB: z.number().int().min(16).max(2048).refine((n) => (n & (n - 1)) === 0, 'a power of two')
      .optional().describe('with opencl: the zero-copy window (ivshmem) in MiB, a power of two (default 256)'),
    networks: vmNetworksSchema.optional(),
  })
  .strict();
export type VmCreate = z.input<typeof vmCreateSchema>;
/** The body POST /api/vms takes: any object, checked by the VM manager against vmCreateSchema and the host. */
export const vmCreateBodySchema = z
  .record(z.string(), z.unknown())
  .describe(
    '{ name, image?, kernel?, initrd?, append?, memoryMiB?, cpus?, display?: std|qxl, accel?: auto|kvm|tcg, ' +
      'cdrom?, diskBytes?, firmware?: bios|uefi, from?, networks?: [network name, ...] (a virtio-net card on each) }',
  );

export const vmParams = z.object({ vm: z.string().describe('VM name or id') });

/** The actions POST /api/vms/{vm}/{action} takes. */
export const VM_ACTIONS = ['start', 'stop', 'force-stop', 'pause', 'resume', 'reset'] as const;
export type VmAction = (typeof VM_ACTIONS)[number];
export const vmActionSchema = z.object({ timeoutSec: z.number().int().min(0).max(3600).optional() }).optional();

/** POST /api/vms/{vm}/media: eject the CD-ROM drive's medium, or insert an uploaded ISO (a running or stopped VM). */
export const mediaSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('eject') }).strict(),
  z.object({ action: z.literal('insert'), image: z.string().min(1).max(64) }).strict(),
]);
export type Media = z.input<typeof mediaSchema>;

/** POST /api/vms/{vm}/resize: grow the disk of a stopped VM. */
export const resizeSchema = z.object({ diskBytes: z.number().int().min(DISK_MIN_BYTES).max(DISK_MAX_BYTES) }).strict();
export type Resize = z.input<typeof resizeSchema>;

/** POST /api/vms/{vm}/exec. */
export const execSchema = z.object({
  argv: z.array(z.string()).min(1),
  timeoutSec: z.number().int().min(1).max(3600).default(60),
});
export type Exec = z.input<typeof execSchema>;
export const execResultSchema = z.object({ stdout: z.string(), stderr: z.string(), exitCode: z.number() });
export type ExecResult = z.infer<typeof execResultSchema>;

/** GET /api/vms/{vm}/log. */
export const LOG_SOURCES = ['serial', 'qemu'] as const;
export const logQuery = z.object({
  source: z.enum(LOG_SOURCES).default('serial'),
  lines: z.coerce.number().int().min(1).max(10000).default(200),
});
export type LogQuery = Partial<z.output<typeof logQuery>>;
export const logSchema = z.object({ source: z.string(), text: z.string() });
export type VmLog = z.infer<typeof logSchema>;
