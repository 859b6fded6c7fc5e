// oriel vm media|template|resize
import type { Command } from 'commander';
import type { Vm } from '../../api/vms.ts';
import { Api, CliError } from '../api.ts';
import { formatBytes, parseSize, printJson } from '../output.ts';

const show = (v: Vm, json: boolean, line: string) => (json ? printJson(v) : console.log(line));

export function vmMediaCommands(vm: Command, api: () => Api): void {
  vm.command('media <name> <action> [image]')
    .description("eject the CD-ROM drive's medium, or insert an uploaded ISO (a running VM: at once; a stopped one: "
      + 'at its next start)')
    .option('--json', 'print JSON')
    .action(async (name: string, action: string, image: string | undefined, o) => {
      if (action === 'eject') {
        if (image) throw new CliError('eject takes no image');
        const v = await api().vms.media(name, { action: 'eject' });
        return show(v, o.json, `${v.name}: CD-ROM empty`);
      }
      if (action !== 'insert') throw new CliError(`the action is eject or insert, not '${action}'`);
      if (!image) throw new CliError('insert needs an image: oriel vm media VM insert IMAGE');
      const v = await api().vms.media(name, { action: 'insert', image });
      show(v, o.json, `${v.name}: CD-ROM holds '${v.cdrom}'`);
    });

  vm.command('template <name>')
    .description('make a stopped VM a read-only template: `vm create NEW --from NAME` makes linked clones of it')
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      const v = await api().vms.template(name);
      show(v, o.json, `${v.name} is a template: clone it with \`oriel vm create NEW --from ${v.name}\``);
    });

  vm.command('resize <name>')
    .description("grow a stopped VM's disk (the guest's partitions and file systems are its own to grow)")
    .requiredOption('--disk-size <size>', 'the new size, e.g. 30G')
    .option('--json', 'print JSON')
    .action(async (name: string, o) => {
      let diskBytes: number;
      try {
        diskBytes = parseSize(o.diskSize);
      } catch (e) {
        throw new CliError(`--disk-size: ${(e as Error).message}`);
      }
      const v = await api().vms.resize(name, { diskBytes });
      show(v, o.json, `${v.name}: disk is ${formatBytes(v.diskBytes ?? diskBytes)}`);
    });
}
