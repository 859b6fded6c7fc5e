// oriel vm create|list|show|start|stop|force-stop|pause|resume|reset|delete|log|exec
import type { Command } from 'commander';
import type { VmAction, VmCreate } from '../../api/vms.ts';
import { Api, CliError } from '../api.ts';
import { parseSize, printJson, table } from '../output.ts';
import { vmMediaCommands } from './vm-media.ts';

export const sizeArg = (name: string) => (v: string) => {
  try {
    return parseSize(v);
  } catch (e) {
    throw new CliError(`${name}: ${(e as Error).message}`);
  }
};

const intArg = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v)) throw new CliError(`${name} must be a whole number, not '${v}'`);
  return Number(v);
};

export function vmCommands(program: Command, api: () => Api): void {
  const vm = program.command('vm').description('create and run virtual machines');

  vm.command('create <name>')
    .description('create a VM (stopped): from a built image (tiny, desktop), an uploaded disk image, a disk image path, '
      + 'an uploaded ISO (--cdrom, with --disk-size), a template (--from), or --kernel/--initrd')
    .option('--image <name|path>', 'built or uploaded image name, or absolute path to a qcow2/raw disk (used through an overlay)')
    .option('--cdrom <image>', 'an uploaded ISO in a CD-ROM drive: boots when the disk does not (install media)')
    .option('--disk-size <size>', 'an empty disk of this size, e.g. 20G', sizeArg('--disk-size'))
    .option('--firmware <bios|uefi>', 'firmware: bios (default) or uefi (OVMF, with its own variable store)')
    .option('--from <template>', 'a linked clone of this template (made in seconds: its disk is the base)')
    .option('--kernel <path>', 'boot this kernel directly')
    .option('--initrd <path>', 'initrd for --kernel')
    .option('--append <args>', 'kernel command line')
    .option('--memory <MiB>', 'guest memory in MiB (default 256)', intArg('--memory'))
    .option('--cpus <n>', 'virtual CPUs (default 1)', intArg('--cpus'))
    .option('--display <std|qxl>', 'graphics card')
    .option('--accel <auto|kvm|tcg>', 'acceleration (default from the server)')
    .option('--hugepages', 'guest RAM always in 2 MiB huge pages (a start fails without them); by default: whenever the ' +
      'server can reserve them (checkpoint pauses of a few ms at any size)')
    .option('--no-hugepages', 'guest RAM in ordinary memory')
    .option('--opencl', "the host's OpenCL in the guest by API remoting (images with the Oriel ICD: tiny-opencl)")
    .option('--opencl-window <MiB>', 'with --opencl: the zero-copy buffer window, a power of two (default 256)', Number)
    .option('--network <name>', 'a virtio-net card on this network (repeatable)',
      (v: string, all: string[] = []) => [...all, v])
    .option('--start', 'start it right away')
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      const image = o.image && (o.image.includes('/') ? (await import('node:path')).resolve(o.image) : o.image);
      const abs = async (p?: string) => (p ? (await import('node:path')).resolve(p) : undefined);
      let v = await api().vms.create({
        name,
        image,
        kernel: await abs(o.kernel),
        initrd: await abs(o.initrd),
        append: o.append,
        memoryMiB: o.memory,
        cpus: o.cpus,
        display: o.display as VmCreate['display'],
        accel: o.accel as VmCreate['accel'],
        ...(o.hugepages === undefined ? {} : { hugepages: o.hugepages as boolean }),
        ...(o.opencl ? { opencl: true } : {}),
        ...(o.openclWindow ? { openclWindowMiB: o.openclWindow } : {}),
        ...(o.network ? { networks: o.network } : {}),
        cdrom: o.cdrom,
        diskBytes: o.diskSize,
        firmware: o.firmware as VmCreate['firmware'],
        from: o.from,
      });
      if (o.start) v = await api().vms.act(name, 'start');
      if (o.json) printJson(v);
      else console.log(`created VM '${v.name}' (${v.state})`);
    });

  vmMediaCommands(vm, api);

  vm.command('list').alias('ls').description('list VMs').option('--json', 'print JSON').action(async (o) => {
    const vms = await api().vms.list();
    if (o.json) return printJson(vms);
    if (vms.length === 0) return console.log('no VMs yet: create one with `oriel vm create NAME --image tiny`');
    console.log(
      table(
        vms.map((v) => ({ ...v, memory: `${v.memoryMiB} MiB` })),
        ['name', 'state', 'memory', 'cpus', 'image', 'owner'],
      ),
    );
  });

  vm.command('show <name>')
    .description('show one VM')
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
    const v = await api().vms.get(name);
    if (o.json) return printJson(v);
    for (const [k, val] of Object.entries(v))
      if (k !== 'stateReason' && k !== 'networks') console.log(`${k.padEnd(10)} ${val ?? '-'}`);
    for (const [i, n] of (v.networks ?? []).entries())
      console.log(`${`net${i}`.padEnd(10)} ${n.network} ${n.mac} ${n.ip ?? '(no lease)'}`);
    if (v.stateReason) console.log(`\n${v.stateReason}`);
  });

  const lifecycle: [string, VmAction, string][] = [
    ['start', 'start', 'start a stopped or crashed VM'],
    ['force-stop', 'force-stop', 'stop at once, without asking the guest'],
    ['pause', 'pause', 'pause the VM'],
    ['resume', 'resume', 'resume a paused VM'],
    ['reset', 'reset', 'hard-reset the VM'],
  ];
  for (const [cmd, path, desc] of lifecycle) {
    vm.command(`${cmd} <name>`).description(desc).option('--json', 'print JSON').action(async (name: string, o) => {
      const v = await api().vms.act(name, path);
      if (o.json) printJson(v);
      else console.log(`${v.name}: ${v.state}${v.stateReason ? ` (${v.stateReason})` : ''}`);
    });
  }

  vm.command('stop <name>').description('shut down through ACPI; forced off after the timeout')
    .option('--timeout <seconds>', 'how long the guest may take', intArg('--timeout'))
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      const v = await api().vms.act(name, 'stop', o.timeout !== undefined ? { timeoutSec: o.timeout } : {});
      if (o.json) printJson(v);
      else console.log(`${v.name}: ${v.state}${v.stateReason ? ` (${v.stateReason})` : ''}`);
    });

  vm.command('delete <name>')
    .alias('rm')
    .description('delete a stopped VM and its disk overlay')
    .action(async (name: string) => {
    await api().vms.delete(name);
    console.log(`deleted VM '${name}'`);
  });

  vm.command('log <name>').description("print the guest's serial console output (this boot)")
    .option('--qemu', "QEMU's own log instead")
    .option('-n, --lines <n>', 'last N lines', intArg('--lines'), 200)
    .action(async (name: string, o) => {
      const r = await api().vms.log(name, { source: o.qemu ? 'qemu' : 'serial', lines: o.lines });
      process.stdout.write(r.text.endsWith('\n') || r.text === '' ? r.text : r.text + '\n');
    });

  vm.command('exec <name> <command...>')
    .description('run a command in the guest and print its output; exits with its status (use -- before the command)')
    .option('--timeout <seconds>', 'give up after this long (default 60)', intArg('--timeout'), 60)
    .action(async (name: string, argv: string[], o) => {
      const r = await api().vms.exec(name, { argv, timeoutSec: o.timeout });
      process.stdout.write(r.stdout);
      process.stderr.write(r.stderr);
      process.exitCode = r.exitCode;
    });
}
