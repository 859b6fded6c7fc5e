// A modal confirmation (delete, and anything else that cannot be undone).
import { signal } from '@preact/signals';
import { html } from '../lib/html.ts';

interface Pending { title: string; text: string; ok: string; resolve: (yes: boolean) => void }
const pending = signal<Pending | null>(null);

export function confirmDialog(title: string, text: string, ok = 'Delete'): Promise<boolean> {
  return new Promise((resolve) => (pending.value = { title, text, ok, resolve }));
}

export function ConfirmHost() {
  const p = pending.value;
  if (!p) return null;
  const answer = (yes: boolean) => {
    pending.value = null;
    p.resolve(yes);
  };
  return html`
    <div class="modal-backdrop" onKeyDown=${(e: KeyboardEvent) => e.key === 'Escape' && answer(false)}>
      <div class="modal" role="dialog" aria-modal="true" aria-labelledby="confirm-title" id="confirm-dialog">
        <h2 id="confirm-title">${p.title}</h2>
        <p>${p.text}</p>
        <div class="buttons">
          <button id="confirm-cancel" onClick=${() => answer(false)} autofocus>Cancel</button>
          <button id="confirm-ok" class="danger" onClick=${() => answer(true)}>${p.ok}</button>
        </div>
      </div>
    </div>`;
}
