// Users (admins): each account with its usage against its limits; "Quota" opens the editor of its limits.
import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { client, type Quota } from '../lib/api.ts';
import { formatBytes } from '../lib/format.ts';
import { html } from '../lib/html.ts';
import { me } from '../lib/state.ts';
import { QuotaEditor } from './quota.ts';

const cell = (used: number, limit: number | null, fmt: (n: number) => string) =>
  `${fmt(used)} / ${limit === null ? '∞' : fmt(limit)}`;

export function UsersPage() {
  const rows = useSignal<Quota[] | null>(null);
  const editing = useSignal<string | null>(null);
  const error = useSignal('');
  useEffect(() => {
    client.users.list()
      .then((us) => Promise.all(us.map((u) => client.quotas.get(u.name))))
      .then((v) => (rows.value = v), (e: Error) => (error.value = e.message));
  }, []);
  if (me.value?.role !== 'admin') return html`<main class="page"><h1>Users</h1><p>This page is for admins.</p></main>`;
  const mib = (n: number) => `${n} MiB`;
  const num = (n: number) => String(n);
  const saved = (v: Quota) => {
    rows.value = (rows.value ?? []).map((r) => (r.user === v.user ? v : r));
  };
  return html`
    <main class="page">
      <div class="page-head"><h1>Users</h1></div>
      <section class="card">
        ${error.value && html`<p class="error" role="alert">${error.value}</p>`}
        ${!rows.value ? html`<p class="muted">Loading…</p>` : html`
        <table class="vms" id="users-list">
          <thead><tr><th>Name</th><th>Role</th><th>VMs</th><th>Memory</th><th>vCPUs</th><th>Disk</th>
            <th>Checkpoints</th><th></th></tr></thead>
          <tbody>
            ${rows.value.map((r) => html`
              <tr key=${r.user} id=${`user-${r.user}-row`}>
                <td>${r.user}</td><td>${r.role}${r.custom ? '' : html` <span class="muted small">(defaults)</span>`}</td>
                <td>${cell(r.usage.vms, r.limits.vms, num)}</td>
                <td>${cell(r.usage.memoryMiB, r.limits.memoryMiB, mib)}</td>
                <td>${cell(r.usage.cpus, r.limits.cpus, num)}</td>
                <td>${cell(r.usage.diskBytes, r.limits.diskBytes, formatBytes)}</td>
                <td>${cell(r.usage.checkpointBytes, r.limits.checkpointBytes, formatBytes)}</td>
                <td><button class="small" id=${`user-${r.user}-quota`}
                  onClick=${() => (editing.value = editing.value === r.user ? null : r.user)}>Quota</button></td>
              </tr>
              ${editing.value === r.user && html`<tr key=${`${r.user}-edit`}><td colspan="8">
                <${QuotaEditor} view=${r} onSaved=${saved} /></td></tr>`}`)}
          </tbody>
        </table>`}
        <p class="muted small">Blank limits are unlimited. Memory and vCPUs count running and paused VMs; disk is the
          provisioned size of the VMs' disks.</p>
      </section>
    </main>`;
}
