// A VM's checkpoint schedule: every N (30s, 5m, 2h, 1d) or a cron expression, and the retention of scheduled
// checkpoints in Proxmox Backup Server's words (keep-last, -hourly, -daily, -weekly, -monthly). Save, remove, and
// a dry run of the rules in the form ("what would pruning delete now?"), marked in the timeline as well.
import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { client, type Checkpoint, type CheckpointSchedule, type PruneResult, type RetentionRules } from '../lib/api.ts';
import { formatTime } from '../lib/format.ts';
import { html } from '../lib/html.ts';
import { notify } from '../lib/state.ts';

const RULES: { key: keyof RetentionRules; label: string; help: string }[] = [
  { key: 'keepLast', label: 'Keep last', help: 'the newest N scheduled checkpoints' },
  { key: 'hourly', label: 'Keep hourly', help: 'the newest checkpoint of each of the last N hours' },
  { key: 'daily', label: 'Keep daily', help: 'the newest checkpoint of each of the last N days' },
  { key: 'weekly', label: 'Keep weekly', help: 'the newest checkpoint of each of the last N ISO weeks' },
  { key: 'monthly', label: 'Keep monthly', help: 'the newest checkpoint of each of the last N months' },
];
const UNITS: Record<string, [string, string]> = {
  s: ['second', 'seconds'],
  m: ['minute', 'minutes'],
  h: ['hour', 'hours'],
  d: ['day', 'days'],
};

/** "5m" → "every 5 minutes"; a cron expression is shown as written. */
export function describeEvery(every: string): string {
  const m = /^(\d+)(s|m|h|d)$/.exec(every);
  if (!m) return `cron “${every}”`;
  const n = Number(m[1]);
  return n === 1 ? `every ${UNITS[m[2]!]![0]}` : `every ${n} ${UNITS[m[2]!]![1]}`;
}

export function describeRules(r: RetentionRules): string {
  const parts = RULES.filter(({ key }) => r[key]).map(({ key, label }) => `${label.toLowerCase()} ${r[key]}`);
  return parts.length ? parts.join(', ') : 'no keep rule';
}

/** What a dry run of the retention rules would delete and keep. */
export type PrunePreview = Pick<PruneResult, 'delete' | 'keep'>;

export function SchedulePanel({ vm, schedule, list, onChanged, preview }: {
  vm: string;
  /** undefined while loading, null when the VM has none. */
  schedule: CheckpointSchedule | null | undefined;
  list: Checkpoint[];
  onChanged: () => void;
  preview: { value: PrunePreview | null };
}) {
  const every = useSignal('');
  const rules = useSignal<Record<keyof RetentionRules, string>>({
    keepLast: '10',
    hourly: '',
    daily: '',
    weekly: '',
    monthly: '',
  });
  const error = useSignal('');
  const working = useSignal<'' | 'save' | 'remove' | 'preview'>('');

  // The form starts from the stored schedule (and follows it when it changes elsewhere).
  useEffect(() => {
    if (!schedule) return;
    every.value = schedule.every;
    rules.value = Object.fromEntries(
      RULES.map(({ key }) => [key, schedule.rules[key] === undefined ? '' : String(schedule.rules[key])]),
    ) as Record<keyof RetentionRules, string>;
  }, [schedule?.updatedAt]);

  const formRules = (): RetentionRules =>
    Object.fromEntries(Object.entries(rules.value).filter(([, v]) => v.trim() !== '').map(([k, v]) => [k, Number(v)]));
  const run = async (what: 'save' | 'remove' | 'preview', fn: () => Promise<void>) => {
    working.value = what;
    error.value = '';
    try {
      await fn();
    } catch (e) {
      error.value = (e as Error).message;
    } finally {
      working.value = '';
    }
  };
  const save = (e: Event) => {
    e.preventDefault();
    void run('save', async () => {
      await client.checkpoints.setSchedule(vm, { every: every.value.trim(), ...formRules() });
      preview.value = null;
      notify(`Checkpoint schedule of ${vm} saved`, 'info');
      onChanged();
    });
  };
  const remove = () => run('remove', async () => {
    await client.checkpoints.removeSchedule(vm);
    notify(`No more scheduled checkpoints of ${vm}`, 'info');
    onChanged();
  });
  const dryRun = () => run('preview', async () => {
    const r = await client.checkpoints.prune(vm, { dryRun: true, rules: formRules() });
    preview.value = { delete: r.delete, keep: r.keep };
  });

  const byId = new Map(list.map((c) => [c.id, c]));
  const noKeep = !Object.values(formRules()).some((n) => n > 0);
  const p = preview.value;
  const val = (e: Event) => (e.target as HTMLInputElement).value;
  return html`
    <section class="cp-schedule" id="checkpoint-schedule-panel">
      <h3>Schedule</h3>
      ${
        schedule === undefined
          ? html`<p class="muted">Loading…</p>`
          : schedule === null
            ? html`<p class="muted" id="checkpoint-schedule-none">No schedule: checkpoints are taken only by hand.</p>`
            : html`<dl class="cp-schedule-summary" id="checkpoint-schedule" data-every=${schedule.every}>
            <dt>When</dt><dd id="checkpoint-schedule-every">${describeEvery(schedule.every)}${/^\d+[smhd]$/.test(schedule.every) ? html` <span class="muted">(${schedule.every})</span>` : ''}</dd>
            <dt>Retention</dt><dd id="checkpoint-schedule-rules">${describeRules(schedule.rules)}; manual checkpoints are never pruned</dd>
            <dt>Next run</dt><dd>${schedule.nextRunAt ? formatTime(schedule.nextRunAt) : '—'}</dd>
            <dt>Last run</dt><dd>${schedule.lastRunAt ? formatTime(schedule.lastRunAt) : 'not yet'}
              ${schedule.lastError && html` <span class="error" id="checkpoint-schedule-last-error">${schedule.lastError}</span>`}</dd>
          </dl>`
      }
      <form id="checkpoint-schedule-form" onSubmit=${save}>
        <label>Every <input id="schedule-every" required value=${every.value} onInput=${(e: Event) => (every.value = val(e))}
          placeholder="5m, 2h, 1d or 0 */6 * * *" title="An interval (30s, 5m, 2h, 1d) or a cron expression" /></label>
        <div class="cp-rules">
          ${RULES.map(
            ({ key, label, help }) => html`
            <label title=${help}>${label}
              <input id=${`schedule-${key}`} type="number" min="0" step="1" value=${rules.value[key]} placeholder="—"
                onInput=${(e: Event) => (rules.value = { ...rules.value, [key]: val(e) })} /></label>`,
          )}
        </div>
        ${noKeep && html`<p class="hint" id="schedule-no-keep">With no keep rule, each scheduled checkpoint is pruned as soon as it is taken.</p>`}
        ${error.value && html`<p class="error" id="schedule-error" role="alert">${error.value}</p>`}
        <div class="buttons">
          <button type="button" id="schedule-preview" onClick=${dryRun} disabled=${!!working.value}
            title="Dry run: which scheduled checkpoints these keep rules would delete now">${working.value === 'preview' ? 'Checking…' : 'Preview prune'}</button>
          ${schedule && html`<button type="button" id="schedule-remove" class="danger" onClick=${remove} disabled=${!!working.value}>${working.value === 'remove' ? 'Removing…' : 'Remove schedule'}</button>`}
          <button id="schedule-save" class="primary" disabled=${!!working.value}>${working.value === 'save' ? 'Saving…' : schedule ? 'Save schedule' : 'Set schedule'}</button>
        </div>
      </form>
      ${
        p &&
        html`
        <div class="cp-preview" id="prune-preview" data-delete=${p.delete.length}>
          <div class="cp-preview-head">
            <strong>${p.delete.length ? `Pruning now would delete ${p.delete.length} scheduled checkpoint${p.delete.length === 1 ? '' : 's'}` : 'Pruning now would delete nothing'}</strong>
            <span class="muted">and keep ${p.keep.length}</span>
            <button class="small" onClick=${() => (preview.value = null)} aria-label="Close the preview">×</button>
          </div>
          ${p.delete.length > 0 && html`<ul>${p.delete.map((id) => html`<li key=${id}>${byId.get(id) ? formatTime(byId.get(id)!.createdAt) : id} <span class="muted">${id}</span></li>`)}</ul>`}
        </div>`
      }
    </section>`;
}
