// Running and recent operations (image builds; checkpoints later), live from the event stream.
import type { Operation } from '../lib/api.ts';
import { client } from '../lib/api.ts';
import { html } from '../lib/html.ts';
import { notify, operations } from '../lib/state.ts';

function ago(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : new Date(iso).toLocaleString();
}

function Row({ op }: { op: Operation }) {
  const active = op.status === 'running' || op.status === 'pending';
  const pct = op.progress.total > 0 ? Math.min(100, (100 * op.progress.done) / op.progress.total) : null;
  const cancel = () => client.operations.cancel(op.id).catch((e: Error) => notify(e.message));
  return html`
    <li id=${`op-${op.id}`} class=${`op op-${op.status}`} data-status=${op.status}>
      <div class="op-head">
        <strong>${op.kind}</strong>${op.vm && html` · ${op.vm}`}
        <span class=${`state state-${op.status}`}>${op.status}</span>
        <span class="muted">${ago(op.createdAt)}${op.user ? ` · ${op.user}` : ''}</span>
        ${active && html`<button class="small" onClick=${cancel}>Cancel</button>`}
      </div>
      ${
        active &&
        html`<div class="progress" role="progressbar" aria-valuenow=${pct ?? undefined} aria-valuemin="0" aria-valuemax="100">
        <div class=${pct === null ? 'bar indeterminate' : 'bar'} style=${pct === null ? '' : `width:${pct}%`}></div></div>`
      }
      ${active && op.progress.stage && html`<div class="muted">${op.progress.stage}${op.progress.total ? ` (${op.progress.done}/${op.progress.total})` : ''}</div>`}
      ${op.error && html`<div class="error">${op.error}</div>`}
    </li>`;
}

export function OperationsPanel({ vm }: { vm?: string }) {
  const list = operations.value.filter((o) => !vm || o.vm === vm);
  const running = list.filter((o) => o.status === 'running' || o.status === 'pending');
  const recent = list.filter((o) => !running.includes(o)).slice(0, 8);
  return html`
    <section class="card" id="operations">
      <h2>Operations</h2>
      ${list.length === 0 && html`<p class="muted">No operations yet.</p>`}
      <ul class="ops">${[...running, ...recent].map((op) => html`<${Row} key=${op.id} op=${op} />`)}</ul>
    </section>`;
}
