// Restore as a new VM: asks for the new VM's name (the server checks it: same rules as creating a VM), starts the
// restore and goes to the new VM's page, where the restore's progress shows under Operations.
import { useSignal } from '@preact/signals';
import { client, enc, type Checkpoint } from '../lib/api.ts';
import { formatTime } from '../lib/format.ts';
import { html } from '../lib/html.ts';
import { navigate } from '../lib/router.ts';
import { notify, whenFinished } from '../lib/state.ts';

export function RestoreAsDialog({ checkpoint, onClose }: { checkpoint: Checkpoint; onClose: () => void }) {
  const name = useSignal(`${checkpoint.vmName}-${checkpoint.createdAt.slice(0, 16).replace(/[-:T]/g, '').slice(4)}`);
  const error = useSignal('');
  const working = useSignal(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    working.value = true;
    error.value = '';
    const target = name.value.trim();
    try {
      const op = await client.checkpoints.restore(checkpoint.vmName, checkpoint.id, { as: target });
      onClose();
      notify(`Restoring checkpoint of ${formatTime(checkpoint.createdAt)} into the new VM ${target}`, 'info');
      navigate(`/vms/${enc(target)}`);
      void whenFinished(op).then((done) => {
        if (done.status !== 'succeeded') notify(`Restore into ${target} ${done.status}: ${done.error ?? ''}`);
      });
    } catch (err) {
      error.value = (err as Error).message;
    } finally {
      working.value = false;
    }
  };
  return html`
    <div class="modal-backdrop" onKeyDown=${(e: KeyboardEvent) => e.key === 'Escape' && onClose()}>
      <form class="modal" role="dialog" aria-modal="true" aria-labelledby="restore-as-title" id="restore-as-dialog" onSubmit=${submit}>
        <h2 id="restore-as-title">Restore as a new VM</h2>
        <p>A new VM like ${checkpoint.vmName} (same memory, vCPUs and display) starts from the checkpoint of
          ${' '}${formatTime(checkpoint.createdAt)}. ${checkpoint.vmName} itself is not touched.</p>
        <label>Name of the new VM
          <input id="restore-as-name" required value=${name.value} autofocus
            onInput=${(e: Event) => (name.value = (e.target as HTMLInputElement).value)} /></label>
        ${error.value && html`<p class="error" id="restore-as-error" role="alert">${error.value}</p>`}
        <div class="buttons">
          <button type="button" id="restore-as-cancel" onClick=${onClose}>Cancel</button>
          <button id="restore-as-ok" class="primary" disabled=${working.value}>${working.value ? 'Restoring…' : 'Restore'}</button>
        </div>
      </form>
    </div>`;
}
