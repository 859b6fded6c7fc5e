// oriel checkpoint create|list|show|restore|delete|verify|schedule|prune
import type { Command } from 'commander';
import type { CheckpointSummary, RestoreResult, RetentionRules, VerifyResult } from '../../api/checkpoints.ts';
import { Api, CliError } from '../api.ts';
import { formatBytes, printJson, table } from '../output.ts';
import { followOperation } from './images.ts';

const count = (flag: string) => (v: string) => {
  if (!/^\d+$/.test(v)) throw new CliError(`${flag} must be a whole number, not '${v}'`);
  return Number(v);
};

function rulesFrom(o: Record<string, number | undefined>): RetentionRules {
  const rules = {
    keepLast: o.keepLast,
    hourly: o.keepHourly,
    daily: o.keepDaily,
    weekly: o.keepWeekly,
    monthly: o.keepMonthly,
  };
  return Object.fromEntries(Object.entries(rules).filter(([, v]) => v !== undefined));
}

function retentionOptions(c: Command): Command {
  return c
    .option('--keep-last <n>', 'keep the newest N scheduled checkpoints', count('--keep-last'))
    .option('--keep-hourly <n>', 'keep the newest of each of the last N hours', count('--keep-hourly'))
    .option('--keep-daily <n>', 'keep the newest of each of the last N days', count('--keep-daily'))
    .option('--keep-weekly <n>', 'keep the newest of each of the last N ISO weeks', count('--keep-weekly'))
    .option('--keep-monthly <n>', 'keep the newest of each of the last N months', count('--keep-monthly'));
}

export function checkpointCommands(program: Command, api: () => Api): void {
  const cp = program.command('checkpoint').alias('cp').description('live checkpoints of VMs, and restore');

  cp.command('create <vm>').description('take a live checkpoint (the VM pauses for milliseconds)')
    .option('--label <text>', 'a note to remember it by')
    .option('--json', 'print the checkpoint as JSON')
    .action(async (vm: string, o) => {
      const a = api();
      const op = await a.checkpoints.take(vm, o.label ? { label: o.label } : {});
      const done = await followOperation(a, op.id);
      const c = done.result as CheckpointSummary;
      if (o.json) return printJson(c);
      console.log(
        `checkpoint ${c.id} of ${vm}: paused ${c.pauseMs ?? '?'} ms, took ${(c.durationMs / 1000).toFixed(1)} s, wrote ${formatBytes(c.newBytes + c.diskBytes)}`,
      );
    });

  cp.command('list <vm>')
    .alias('ls')
    .description("a VM's checkpoints")
    .option('--json', 'print JSON')
    .action(async (vm: string, o) => {
    const list = await api().checkpoints.list(vm);
    if (o.json) return printJson(list);
    if (!list.length)
      return console.log(`VM '${vm}' has no checkpoints yet: take one with \`oriel checkpoint create ${vm}\``);
    console.log(
      table(
        list.map((c) => ({
          ...c,
          pause: c.pauseMs === null ? null : `${c.pauseMs} ms`,
          written: formatBytes(c.newBytes + c.diskBytes),
        })),
        ['id', 'createdAt', 'kind', 'pause', 'written', 'label'],
      ),
    );
  });

  cp.command('show <vm> <id>')
    .description('one checkpoint')
    .option('--json', 'print JSON')
    .action(async (vm: string, id: string, o) => {
    const c = await api().checkpoints.get(vm, id);
    if (o.json) return printJson(c);
    for (const [k, v] of Object.entries(c))
      console.log(`${k.padEnd(11)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  });

  cp.command('restore <vm> <id>')
    .description(
      'bring the VM back to the checkpoint (what happened since is lost), or --as a new VM; lazy: the guest runs ' +
        'at once and its RAM follows',
    )
    .option('--as <name>', 'restore into a new VM with this name; the original keeps running')
    .option('--eager', 'load all RAM before the guest runs (no userfaultfd needed)')
    .option('--from-store <url>', "from another server's --checkpoint-store (s3://BUCKET/PREFIX): a new VM here (admins)")
    .action(async (vm: string, id: string, o: { as?: string; eager?: boolean; fromStore?: string }) => {
      const a = api();
      const opts = { ...(o.as ? { as: o.as } : {}), ...(o.eager ? { mode: 'eager' as const } : {}) };
      const op = o.fromStore
        ? await a.checkpoints.restoreFromStore({ url: o.fromStore, vm, id, ...opts })
        : await a.checkpoints.restore(vm, id, opts);
      const done = await followOperation(a, op.id);
      const r = done.result as RestoreResult;
      const s = (ms: number) => `${(ms / 1000).toFixed(ms < 1000 ? 3 : 1)} s`;
      if (r.fallback) console.log(`lazy restore not possible (${r.fallback}): restored eagerly`);
      if (r.mode === 'lazy' && typeof r.runningMs === 'number') {
        console.log(
          `VM '${r.vm}' restored from checkpoint ${id}: running ${s(r.runningMs)} after QEMU started, ` +
            `all RAM in place after ${s(r.restoreMs)}`,
        );
      } else console.log(`VM '${r.vm}' restored from checkpoint ${id} in ${s(r.restoreMs)}`);
      if (r.note) console.log(`note: ${r.note}`);
    });

  cp.command('delete <vm> <id>')
    .alias('rm')
    .description('delete a checkpoint')
    .action(async (vm: string, id: string) => {
    await api().checkpoints.delete(vm, id);
    console.log(`deleted checkpoint ${id}`);
  });

  cp.command('verify <vm> [id]')
    .description("check every hash of the VM's checkpoints (or one) and their disk images; exits non-zero on corruption")
    .action(async (vm: string, id: string | undefined) => {
    const a = api();
    const op = await a.checkpoints.verify(vm, id);
    const done = await followOperation(a, op.id);
    const r = done.result as VerifyResult;
    console.log(
      `${r.checked.length} checkpoint(s) verified: every hash matches, ${r.diskImages} disk image(s) sound`,
    );
  });

  retentionOptions(
    cp
      .command('schedule <vm>')
      .description(
        'take checkpoints periodically, pruning scheduled ones by the --keep rules (manual ones are never pruned)',
      )
      .option('--every <when>', 'an interval (30s, 5m, 2h, 1d) or a cron expression ("0 */6 * * *")')
      .option('--off', 'stop the schedule')
      .option('--store <url>', "admins: upload this schedule's checkpoints to s3://BUCKET/PREFIX[?endpoint=URL] " +
        "('server': to the server's own store)")
      .option('--json', 'print JSON'),
  ).action(async (vm: string, o) => {
    const a = api();
    if (o.off) {
      await a.checkpoints.removeSchedule(vm);
      return console.log(`no more scheduled checkpoints of ${vm}`);
    }
    const s = o.every
      ? await a.checkpoints.setSchedule(vm, {
        every: o.every, ...rulesFrom(o), ...(o.store ? { store: o.store === 'server' ? null : o.store } : {}),
      })
      : await a.checkpoints.schedule(vm);
    if (o.json) return printJson(s);
    console.log(
      `${vm}: every ${s.every}, keep ${JSON.stringify(s.rules)}, next at ${s.nextRunAt ?? '-'}` +
        `${s.store ? `, uploads to ${s.store.replace(/\?.*$/, '')}` : ''}${s.lastError ? ` (last run: ${s.lastError})` : ''}`,
    );
  });

  retentionOptions(
    cp
      .command('prune <vm>')
      .description("delete scheduled checkpoints the retention rules (the schedule's, or --keep-*) do not keep")
      .option('--dry-run', 'only list what would be deleted')
      .option('--json', 'print JSON'),
  ).action(async (vm: string, o) => {
    const rules = rulesFrom(o);
    const r = await api().checkpoints.prune(vm, {
      dryRun: !!o.dryRun,
      ...(Object.keys(rules).length ? { rules } : {}),
    });
    if (o.json) return printJson(r);
    console.log(
      `${o.dryRun ? 'would delete' : 'deleted'} ${r.delete.length}: ${r.delete.join(' ') || '-'}\nkeep ${r.keep.length}: ${r.keep.join(' ') || '-'}`,
    );
  });
}
