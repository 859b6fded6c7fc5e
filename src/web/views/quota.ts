// Quotas in the UI: the signed-in user's usage against their limits (the VM list's header), and the admin's form
// to set one user's limits (the Users page).
import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { client, type Quota, type QuotaResource } from '../lib/api.ts';
import { formatBytes } from '../lib/format.ts';
import { html } from '../lib/html.ts';
import { notify, vms } from '../lib/state.ts';


type Unit = 'n' | 'mib' | 'bytes';
export const QUOTA_ROWS: [QuotaResource, string, Unit][] = [
  ['vms', 'VMs', 'n'],
  ['memoryMiB', 'running memory', 'mib'],
  ['cpus', 'running vCPUs', 'n'],
  ['diskBytes', 'disk (provisioned)', 'bytes'],
  ['checkpointBytes', 'checkpoints', 'bytes'],
];
const show = (n: number, unit: Unit) => (unit === 'bytes' ? formatBytes(n) : unit === 'mib' ? `${n} MiB` : String(n));

/** "2 of 10 VMs · 128 MiB of 2048 MiB running memory …" for the signed-in user; refreshed as their VMs change. */
export function QuotaSummary() {
  const q = useSignal<Quota | null>(null);
  const list = vms.value;
  useEffect(() => {
    client.quotas.get().then((v) => (q.value = v), () => undefined);
  }, [list]);
  const v = q.value;
  if (!v) return null;
  const parts = QUOTA_ROWS.map(([k, label, unit]) => {
    const lim = v.limits[k];
    const over = lim !== null && v.usage[k] >= lim;
    return html`<span class=${over ? 'quota-item quota-full' : 'quota-item'} id=${`quota-${k}`}>
      ${show(v.usage[k], unit)}${lim === null ? '' : ` of ${show(lim, unit)}`} ${label}</span>`;
  });
  return html`<p class="muted small quota" id="quota-summary" title="Your usage and your limits">
    ${parts.map((p, i) => html`${i ? ' · ' : ''}${p}`)}</p>`;
}

const GiB = 2 ** 30;
/** Form value of a limit: blank is unlimited; bytes are shown and typed in GiB. */
const toField = (n: number | null, unit: Unit) => (n === null ? '' : unit === 'bytes' ? String(n / GiB) : String(n));
const fromField = (s: string, unit: Unit): number | null => {
  if (s.trim() === '') return null;
  const n = Number(s);
  return unit === 'bytes' ? Math.round(n * GiB) : n;
};

/** An admin's editor of one user's limits. */
export function QuotaEditor({ view, onSaved }: { view: Quota; onSaved: (v: Quota) => void }) {
  const fields = useSignal<Record<string, string>>(
    Object.fromEntries(QUOTA_ROWS.map(([k, , u]) => [k, toField(view.limits[k], u)])),
  );
  const error = useSignal('');
  const save = async (e: Event) => {
    e.preventDefault();
    error.value = '';
    try {
      const body = Object.fromEntries(QUOTA_ROWS.map(([k, , u]) => [k, fromField(fields.value[k] ?? '', u)]));
      onSaved(await client.quotas.set(view.user, body));
      notify(`Quota of ${view.user} saved`, 'info');
    } catch (err) {
      error.value = (err as Error).message;
    }
  };
  const reset = async () => {
    try {
      const v = await client.quotas.reset(view.user);
      fields.value = Object.fromEntries(QUOTA_ROWS.map(([k, , u]) => [k, toField(v.limits[k], u)]));
      onSaved(v);
    } catch (err) {
      error.value = (err as Error).message;
    }
  };
  const unitOf = (u: Unit) => (u === 'bytes' ? ' (GiB)' : u === 'mib' ? ' (MiB)' : '');
  return html`
    <form class="quota-editor" id=${`quota-form-${view.user}`} onSubmit=${save}>
      <div class="grid">
        ${QUOTA_ROWS.map(([k, label, u]) => html`
          <label>${label}${unitOf(u)}
            <input id=${`quota-${view.user}-${k}`} type="number" min="0" step=${u === 'bytes' ? 'any' : '1'}
              placeholder="unlimited" value=${fields.value[k]}
              onInput=${(e: Event) => (fields.value = { ...fields.value, [k]: (e.target as HTMLInputElement).value })} />
          </label>`)}
      </div>
      ${error.value && html`<p class="error" role="alert">${error.value}</p>`}
      <div class="buttons">
        <button type="button" onClick=${reset} title="Back to the default limits">Defaults</button>
        <button class="primary" id=${`quota-${view.user}-save`}>Save</button>
      </div>
    </form>`;
}
