// oriel image build|list, and oriel operation list|show|cancel
import type { Command } from 'commander';
import type { Operation } from '../../api/operations.ts';
import { isFinalStatus } from '../../api/states.ts';
import { Api, CliError } from '../api.ts';
import { formatBytes, printJson, ProgressBar, table } from '../output.ts';
import { uploadCommands } from './uploads.ts';

/** Shows an operation's progress until it ends (following server-sent events); fails if it did not succeed. */
export async function followOperation(api: Api, id: string): Promise<Operation> {
  const bar = new ProgressBar();
  let last: Operation | undefined;
  const ac = new AbortController();
  const show = (op: Operation) => {
    last = op;
    bar.update(op.progress.done, op.progress.total, op.progress.stage);
    return isFinalStatus(op.status);
  };
  const onSigint = () => {
    void api.operations.cancel(id).catch(() => undefined).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSigint);
  try {
    await api.follow((e) => e.type === 'operation' && e.data.id === id && show(e.data), {
      signal: ac.signal,
      onOpen: async () => show(await api.operations.get(id)),
    });
  } finally {
    process.off('SIGINT', onSigint);
    bar.end();
  }
  if (!last || last.status !== 'succeeded') {
    throw new CliError(
      `${last?.kind ?? 'operation'} ${last?.status ?? 'lost'}: ${last?.error ?? 'the event stream ended early'}`,
    );
  }
  return last;
}

export function imageCommands(program: Command, api: () => Api): void {
  const image = program.command('image').description('guest images: built ones, and those you upload');
  uploadCommands(image, api);
  image.command('build <name>').description('build an image into the cache (instant when its recipe is already built)')
    .option('--json', 'print the finished operation as JSON')
    .action(async (name: string, o) => {
      const a = api();
      const op = await a.images.build(name);
      const done = await followOperation(a, op.id);
      if (o.json) printJson(done);
      else console.log(`image '${name}' is built`);
    });
  image
    .command('list')
    .alias('ls')
    .description('images and whether they are built')
    .option('--json', 'print JSON')
    .action(async (o) => {
    const list = await api().images.list();
    if (o.json) return printJson(list);
    console.log(
      table(
        list.map((i) => ({ ...i, built: i.built ? 'yes' : 'no', size: i.sizeBytes ? formatBytes(i.sizeBytes) : null })),
        ['name', 'built', 'size', 'builtAt', 'description'],
      ),
    );
  });

  const op = program.command('operation').alias('op').description('long-running operations');
  op.command('list')
    .alias('ls')
    .option('--vm <name>', 'only this VM')
    .option('--json', 'print JSON')
    .action(async (o) => {
    const list = await api().operations.list({ vm: o.vm });
    if (o.json) return printJson(list);
    console.log(
      table(
        list.map((x) => ({ ...x, progress: x.progress.stage })),
        ['id', 'kind', 'vm', 'status', 'progress', 'createdAt'],
      ),
    );
  });
  op.command('show <id>').option('--json', 'print JSON').action(async (id: string, o) => {
    const x = await api().operations.get(id);
    if (o.json) return printJson(x);
    console.log(
      `${x.kind} ${x.status} (${x.progress.stage} ${x.progress.done}/${x.progress.total})${x.error ? `: ${x.error}` : ''}`,
    );
    if (x.log.length) console.log(x.log.join('\n'));
  });
  op.command('cancel <id>').action(async (id: string) => {
    const x = await api().operations.cancel(id);
    console.log(`${x.id}: ${x.status}`);
  });
}
