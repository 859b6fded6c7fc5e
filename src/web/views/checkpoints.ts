// The Checkpoints tab of a VM's page: take one (an operation with live progress), the timeline with restore /
// restore as a new VM / verify / delete, the schedule with retention and a prune dry run, and a plot of size and
// pause. Live: the list reloads when the event stream reports a checkpoint operation of this VM finished (taken by
// hand, by the schedule, from the CLI, deleted or pruned anywhere) and when the stream reconnects.
import { useSignal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';
import {
  ApiError, client, type Checkpoint, type CheckpointSchedule, type CheckpointSummary, type Operation,
  type RestoreResult, type VerifyResult, type Vm,
} from '../lib/api.ts';
import { formatBytes, formatMs, formatTime } from '../lib/format.ts';
import { html } from '../lib/html.ts';
import { isFinal, live, notify, operations, scheduleChange, whenFinished } from '../lib/state.ts';
import { confirmDialog } from './confirm.ts';
import { CheckpointPlot } from './checkpoints-plot.ts';
import { RestoreAsDialog } from './checkpoints-restore.ts';
import { SchedulePanel, type PrunePreview } from './checkpoints-schedule.ts';
import { Timeline, type RowAction, type VerifyOutcome } from './checkpoints-timeline.ts';

const KIND_LABEL: Record<string, string> = {
  'checkpoint.create': 'Taking a checkpoint',
  'checkpoint.restore': 'Restoring a checkpoint',
  'checkpoint.verify': 'Verifying checkpoints',
  'checkpoint.delete': 'Deleting a checkpoint',
  'checkpoint.prune': 'Pruning checkpoints',
};

/** The VM's checkpoint operations (from the live operations list). */
function useCheckpointOps(vm: string): Operation[] {
  return operations.value.filter((o) => o.vm === vm && o.kind.startsWith('checkpoint.'));
}

/** Checkpoints and schedule of one VM, reloaded when a checkpoint operation of it ends and when the stream
 * (re)connects. Responses older than the newest request are dropped. */
function useCheckpointData(vm: string, ops: Operation[]) {
  const list = useSignal<Checkpoint[] | null>(null);
  const schedule = useSignal<CheckpointSchedule | null | undefined>(undefined);
  const error = useSignal('');
  const seq = useRef(0);
  const reload = async () => {
    const n = ++seq.current;
    try {
      const [l, s] = await Promise.all([
        client.checkpoints.list(vm),
        client.checkpoints.schedule(vm).catch((e: unknown) => {
          if (e instanceof ApiError && e.status === 404) return null;
          throw e;
        }),
      ]);
      if (n !== seq.current) return;
      list.value = l;
      schedule.value = s;
      error.value = '';
    } catch (e) {
      if (n === seq.current) error.value = `Could not load the checkpoints: ${(e as Error).message}`;
    }
  };
  useEffect(() => void reload(), [vm, live.value === 'live']);
  // The schedule changed elsewhere (another browser, the CLI) or ran.
  const sc = scheduleChange.value;
  useEffect(() => { if (sc?.vmName === vm) void reload(); }, [sc]);

  const finished = ops.filter(isFinal).map((o) => o.id).join(' ');
  const seen = useRef<string | null>(null);
  useEffect(() => {
    const before = seen.current === null ? null : new Set(seen.current.split(' '));
    seen.current = finished;
    if (before && finished.split(' ').some((id) => id && !before.has(id))) void reload();
  }, [finished]);
  return { list, schedule, error, reload };
}

function ActiveOps({ ops }: { ops: Operation[] }) {
  const active = ops.filter((o) => !isFinal(o));
  if (!active.length) return null;
  return html`<ul class="ops cp-ops">${active.map(
    (op) => html`
    <li key=${op.id} id=${`checkpoint-op-${op.id}`} class="op" data-status=${op.status} data-kind=${op.kind}>
      <div class="op-head"><strong>${KIND_LABEL[op.kind] ?? op.kind}</strong>
        <span class=${`state state-${op.status}`}>${op.status}</span>${op.user && html`<span class="muted">${op.user}</span>`}</div>
      <div class="progress" role="progressbar" aria-label=${KIND_LABEL[op.kind] ?? op.kind}><div class="bar indeterminate"></div></div>
      <div class="muted cp-stage">${op.progress.stage}</div>
    </li>`,
  )}</ul>`;
}

export function CheckpointsTab({ vm }: { vm: Vm }) {
  const ops = useCheckpointOps(vm.name);
  const { list, schedule, error, reload } = useCheckpointData(vm.name, ops);
  const label = useSignal('');
  const taking = useSignal(false);
  const actionError = useSignal('');
  const verify = useSignal<VerifyOutcome | null>(null);
  const preview = useSignal<PrunePreview | null>(null);
  const restoreAs = useSignal<Checkpoint | null>(null);
  const highlight = useSignal<string | null>(null);

  /** Runs an operation started by `start`, reports its end; the list reloads through the event stream. */
  const follow = async (what: string, start: () => Promise<Operation>, onDone?: (op: Operation) => void) => {
    actionError.value = '';
    try {
      const done = await whenFinished(await start());
      if (done.status === 'succeeded') onDone?.(done);
      else actionError.value = `${what} ${done.status}: ${done.error ?? ''}`;
      return done;
    } catch (e) {
      actionError.value = `${what}: ${(e as Error).message}`;
      return null;
    }
  };

  const take = async () => {
    taking.value = true;
    const body = label.value.trim() ? { label: label.value.trim() } : {};
    await follow('Checkpoint', () => client.checkpoints.take(vm.name, body), (op) => {
      const c = op.result as CheckpointSummary;
      label.value = '';
      highlight.value = c.id;
      notify(
        `Checkpoint of ${vm.name} taken: the guest paused ${formatMs(c.pauseMs)}, ${formatBytes(c.newBytes + c.diskBytes)} written`,
        'info',
      );
    });
    taking.value = false;
  };

  const verifyIds = (c?: Checkpoint) =>
    follow(
      'Verify',
      () => client.checkpoints.verify(vm.name, c?.id),
      (op) => {
    const r = op.result as VerifyResult;
    verify.value = {
      ok: r.ok,
      checked: r.checked,
      broken: Object.keys(r.broken),
      at: op.finishedAt ?? new Date().toISOString(),
    };
  },
    ).then((op) => {
      if (op && op.status === 'failed') {
        const ids = (list.value ?? []).map((x) => x.id).filter((id) => op.error?.includes(id));
        verify.value = {
          ok: false,
          checked: c ? [c.id] : (list.value ?? []).map((x) => x.id),
          broken: ids,
          at: op.finishedAt ?? new Date().toISOString(),
          error: op.error ?? undefined,
        };
      }
    });

  const onAction = async (a: RowAction, c: Checkpoint) => {
    const when = formatTime(c.createdAt);
    if (a === 'restore-as') return void (restoreAs.value = c);
    if (a === 'verify') return void verifyIds(c);
    if (a === 'restore') {
      const running = ['running', 'paused', 'starting'].includes(vm.state);
      const ok = await confirmDialog(
        `Restore ${vm.name} to ${when}?`,
        `${running ? `${vm.name} is switched off and` : `${vm.name} is`} brought back to the checkpoint: its RAM, devices and disk as they were at ${when}. ` +
          `Everything since then (running programs, files written) is lost. To keep it, take a checkpoint first or restore as a new VM.`,
        'Restore',
      );
      if (!ok) return;
      await follow(
        'Restore',
        () => client.checkpoints.restore(vm.name, c.id),
        (op) => {
        const r = op.result as RestoreResult;
        notify(`${vm.name} restored to the checkpoint of ${when} in ${formatMs(r.restoreMs)}`, 'info');
      },
      );
      return;
    }
    const ok = await confirmDialog(
      `Delete the checkpoint of ${when}?`,
      `${vm.name} can no longer be restored to ${when}. Its disk changes merge into the next checkpoint; RAM pages no other checkpoint uses are freed. This cannot be undone.`,
    );
    if (!ok) return;
    actionError.value = '';
    try {
      await client.checkpoints.delete(vm.name, c.id);
      if (preview.value) preview.value = null; // computed against a list that changed
      await reload();
    } catch (e) {
      actionError.value = `Delete: ${(e as Error).message}`;
    }
  };

  const active = ops.filter((o) => !isFinal(o));
  const creating = active.some((o) => o.kind === 'checkpoint.create');
  const takeExcuse = !['running', 'paused'].includes(vm.state)
    ? `Checkpoints are taken of a running or paused VM (${vm.name} is ${vm.state})`
    : creating || taking.value
      ? 'A checkpoint is being taken'
      : null;
  const rowBusy = active.some((o) => o.kind === 'checkpoint.restore') ? 'A restore is running' : null;
  const cps = list.value;
  const v = verify.value;
  return html`
    <div class="checkpoints" id="checkpoints">
      <div class="console-toolbar cp-toolbar">
        <input id="checkpoint-label" placeholder="Label (optional)" maxlength="200" value=${label.value}
          onInput=${(e: Event) => (label.value = (e.target as HTMLInputElement).value)} onKeyDown=${(e: KeyboardEvent) => e.key === 'Enter' && !takeExcuse && take()} />
        <button id="checkpoint-take" class="primary" disabled=${!!takeExcuse} title=${takeExcuse ?? 'A live checkpoint: RAM, devices and disk; the guest pauses for milliseconds'}
          onClick=${take}>${taking.value ? 'Taking checkpoint…' : 'Take checkpoint'}</button>
        <button id="checkpoint-verify-all" disabled=${!cps?.length || !!rowBusy} title=${!cps?.length ? 'No checkpoint to verify' : 'Check every hash of every checkpoint of this VM'}
          onClick=${() => verifyIds()}>Verify all</button>
        <span class="spacer"></span>
        ${cps && html`<span class="muted" id="checkpoint-count">${cps.length} checkpoint${cps.length === 1 ? '' : 's'}${cps.length ? `, ${formatBytes(cps.reduce((a, c) => a + c.newBytes + c.diskBytes, 0))} written` : ''}</span>`}
      </div>
      <${ActiveOps} ops=${ops} />
      ${error.value && html`<p class="error" id="checkpoints-error" role="alert">${error.value}</p>`}
      ${actionError.value && html`<p class="error" id="checkpoint-action-error" role="alert">${actionError.value}</p>`}
      ${
        v &&
        html`<p id="checkpoint-verify-result" class=${v.ok ? 'cp-verify-ok' : 'error'} data-ok=${String(v.ok)} role="status">
        ${v.ok ? `✓ ${v.checked.length} checkpoint${v.checked.length === 1 ? '' : 's'} verified at ${formatTime(v.at)}: every hash matches` : `✗ Verify found corrupt data: ${v.error ?? v.broken.join(', ')}`}
        <button class="small" onClick=${() => (verify.value = null)} aria-label="Dismiss">×</button></p>`
      }
      ${
        cps === null
          ? !error.value && html`<p class="muted">Loading…</p>`
          : html`
        <${Timeline} vm=${vm} list=${cps} verify=${v} pruned=${new Set(preview.value?.delete ?? [])} busy=${rowBusy}
          highlight=${highlight.value} onAction=${onAction} />
        ${cps.length === 0 && html`<p class="muted" id="checkpoints-empty">No checkpoints of ${vm.name} yet. A checkpoint keeps RAM, devices and disk of an instant while the VM keeps running.</p>`}`
      }
      <div class="cp-grid">
        <section class="cp-chart">
          <h3>Size written and pause</h3>
          ${cps && cps.length > 0 ? html`<${CheckpointPlot} list=${cps} />` : html`<p class="muted">Plotted once there are checkpoints.</p>`}
        </section>
        <${SchedulePanel} vm=${vm.name} schedule=${schedule.value} list=${cps ?? []} onChanged=${reload} preview=${preview} />
      </div>
      ${restoreAs.value && html`<${RestoreAsDialog} checkpoint=${restoreAs.value} onClose=${() => (restoreAs.value = null)} />`}
    </div>`;
}
