// oriel user quota [NAME] [--vms N --memory MiB --cpus N --disk SIZE --checkpoints SIZE | --reset]
import type { Command } from 'commander';
import type { QuotaLimits, QuotaSet } from '../../api/quotas.ts';
import { parseSize } from '../../config.ts';
import { CliError, type Api } from '../api.ts';
import { formatBytes, printJson, table } from '../output.ts';

const ROWS: [keyof QuotaLimits, string, 'n' | 'mib' | 'bytes'][] = [
  ['vms', 'VMs', 'n'],
  ['memoryMiB', 'running memory', 'mib'],
  ['cpus', 'running vCPUs', 'n'],
  ['diskBytes', 'disk (provisioned)', 'bytes'],
  ['checkpointBytes', 'checkpoints', 'bytes'],
];

const show = (n: number | null, unit: 'n' | 'mib' | 'bytes') =>
  n === null ? 'unlimited' : unit === 'bytes' ? formatBytes(n) : unit === 'mib' ? `${n} MiB` : String(n);

/** A limit from the command line: a whole number (or a size for bytes), or `unlimited`. */
function limitArg(flag: string, v: string, unit: 'n' | 'mib' | 'bytes'): number | null {
  if (v === 'unlimited') return null;
  const n = unit === 'bytes' ? parseSize(v) : /^\d+$/.test(v) ? Number(v) : undefined;
  if (n === undefined || !Number.isSafeInteger(n)) {
    throw new CliError(`${flag} must be ${unit === 'bytes' ? 'a size (e.g. 20G, 512M)' : 'a whole number'} or 'unlimited', not '${v}'`);
  }
  return n;
}

export function quotaCommand(user: Command, api: () => Api): void {
  user.command('quota [name]')
    .description("show a user's limits and usage (yours without NAME); with options, set them (admin)")
    .option('--vms <n>', 'VMs the user may own')
    .option('--memory <MiB>', 'MiB of memory of running VMs')
    .option('--cpus <n>', 'vCPUs of running VMs')
    .option('--disk <size>', 'provisioned size of the VM disks (e.g. 100G)')
    .option('--checkpoints <size>', 'storage of the checkpoints (e.g. 50G)')
    .option('--reset', 'back to the default limits (admin)')
    .option('--json', 'print JSON')
    .action(async (name: string | undefined, o) => {
      const a = api();
      const flags: [keyof QuotaLimits, string, string | undefined][] = [
        ['vms', '--vms', o.vms], ['memoryMiB', '--memory', o.memory], ['cpus', '--cpus', o.cpus],
        ['diskBytes', '--disk', o.disk], ['checkpointBytes', '--checkpoints', o.checkpoints],
      ];
      const patch: QuotaSet = {};
      for (const [k, flag, v] of flags) {
        if (v !== undefined) patch[k] = limitArg(flag, v, ROWS.find((r) => r[0] === k)![2]);
      }
      const setting = Object.keys(patch).length > 0 || o.reset;
      if (setting && !name) throw new CliError('name the user whose quota to set: oriel user quota NAME --memory ...');
      if (o.reset && Object.keys(patch).length) throw new CliError('--reset takes no limits');
      const v = o.reset
        ? await a.quotas.reset(name!)
        : setting
          ? await a.quotas.set(name!, patch)
          : await a.quotas.get(name);
      if (o.json) return printJson(v);
      console.log(`quota of ${v.user} (${v.role}${v.custom ? '' : ', default limits'})`);
      const rows = ROWS.map(([k, label, unit]) => ({
        resource: label, used: show(v.usage[k], unit), limit: show(v.limits[k], unit),
      }));
      console.log(table(rows, ['resource', 'used', 'limit']));
    });
}
