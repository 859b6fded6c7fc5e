// QEMU's own pause recipes, driven alone (no Oriel receiver: the stream goes into a socket that drops it), for
// bench/checkpoint.ts to print beside Oriel's checkpoint pauses. Pauses are STOP → RESUME from QEMU's event
// timestamps. The disk recipes back the disk up incrementally against a bitmap of their own (`bench`), so Oriel's
// own bitmap and disk chain are left alone.
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pauseFromEvents, waitMigration } from '../src/checkpoint/migration.ts';
import { PRECOPY_PARAMETERS, precopyPause } from '../src/checkpoint/pause-mode.ts';
import { DISK_NODE } from '../src/vm/qemu-args.ts';
import type { QmpClient, QmpEvent } from '../src/vm/qmp/index.ts';

export type Recipe = 'plain background' | 'stop + disk + background' | 'precopy + pbs + disk' | 'savevm';

export class QemuRecipes {
  private sink?: Server;
  private readonly sock: string;
  private n = 0;

  constructor(private readonly qmp: () => QmpClient, private readonly dir: string, private readonly qemuImg: string) {
    this.sock = join(dir, 'bench-sink.sock');
  }

  async open(): Promise<void> {
    rmSync(this.sock, { force: true });
    this.sink = createServer((s) => s.resume());
    await new Promise<void>((r) => this.sink!.listen(this.sock, r));
    await this.qmp().execute('block-dirty-bitmap-add', { node: DISK_NODE, name: 'bench' });
  }

  close(): void {
    this.sink?.close();
  }

  /** One pause of `recipe`; returns its STOP → RESUME in ms. */
  async run(recipe: Recipe): Promise<number | null> {
    const qmp = this.qmp();
    const evs: QmpEvent[] = [];
    const off = qmp.onEvent((e) => { if (e.event === 'STOP' || e.event === 'RESUME') evs.push(e); });
    try {
      const uri = `unix:${this.sock}`;
      if (recipe === 'savevm') {
        await qmp.execute('human-monitor-command', { 'command-line': 'savevm bench' }, { timeoutMs: 600_000 });
        await qmp.execute('human-monitor-command', { 'command-line': 'delvm bench' }, { timeoutMs: 600_000 });
      } else if (recipe === 'plain background') {
        await this.caps('background');
        await qmp.execute('migrate', { uri });
        await this.completed();
      } else if (recipe === 'stop + disk + background') {
        await this.caps('background');
        const t = await this.target();
        await Promise.all([
          qmp.execute('stop'), qmp.execute('transaction', { actions: t.actions }), qmp.execute('migrate', { uri }),
        ]);
        await this.completed();
        await t.done();
      } else {
        await this.caps('precopy');
        const t = await this.target();
        await precopyPause(qmp, uri, { actions: t.actions, jobId: t.jobId });
        await this.completed();
        await t.done();
      }
      return await pauseFromEvents(evs);
    } finally {
      off();
    }
  }

  private async completed(): Promise<void> {
    const info = await waitMigration(this.qmp(), 300_000);
    if (info.status !== 'completed') throw new Error(`migration ${info.status}: ${info['error-desc'] ?? ''}`);
  }

  private async caps(mode: 'background' | 'precopy'): Promise<void> {
    const qmp = this.qmp();
    const pre = mode === 'precopy';
    await qmp.execute('migrate-set-capabilities', {
      capabilities: [
        { capability: 'background-snapshot', state: false },
        { capability: 'pause-before-switchover', state: false },
        { capability: 'auto-converge', state: false },
        { capability: 'events', state: true },
      ],
    });
    await qmp.execute('migrate-set-capabilities', {
      capabilities: pre
        ? [{ capability: 'pause-before-switchover', state: true }, { capability: 'auto-converge', state: true }]
        : [{ capability: 'background-snapshot', state: true }],
    });
    if (pre) await qmp.execute('migrate-set-parameters', { ...PRECOPY_PARAMETERS });
  }

  /** A fresh target image and the transaction backing the disk up into it (incremental, bitmap `bench`). */
  private async target(): Promise<{ actions: object[]; jobId: string; done(): Promise<void> }> {
    const qmp = this.qmp();
    const n = ++this.n;
    const node = `bench-t${n}`, jobId = `bench-j${n}`, file = join(this.dir, `bench-${n}.qcow2`);
    const dev = (await qmp.execute('query-block')).find((b) => b.inserted?.['node-name'] === DISK_NODE)!;
    execFileSync(this.qemuImg, ['create', '-q', '-f', 'qcow2', file, String(dev.inserted!.image['virtual-size'])]);
    await qmp.execute('blockdev-add', {
      driver: 'qcow2', 'node-name': node, file: { driver: 'file', filename: file }, backing: null,
    });
    const actions = [{
      type: 'blockdev-backup',
      data: {
        device: DISK_NODE, target: node, 'job-id': jobId, sync: 'incremental', bitmap: 'bench',
        'auto-finalize': true, 'auto-dismiss': false,
      },
    }];
    return {
      actions, jobId,
      done: async () => {
        for (;;) {
          const j = (await qmp.execute<{ id: string; status: string }[]>('query-jobs')).find((x) => x.id === jobId);
          if (!j || j.status === 'concluded') break;
          await new Promise((r) => setTimeout(r, 20));
        }
        await qmp.execute('job-dismiss', { id: jobId }).catch(() => undefined);
        await qmp.execute('blockdev-del', { 'node-name': node });
        rmSync(file, { force: true });
      },
    };
  }
}

/** Nearest-rank percentile of `xs` (p in 0..100). */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)]!;
}
