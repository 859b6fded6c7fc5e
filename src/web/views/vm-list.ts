import { useSignal } from '@preact/signals';
import { html } from '../lib/html.ts';
import { me, vms, vmsLoaded } from '../lib/state.ts';
import { CreateVm } from './create-vm.ts';
import { OperationsPanel } from './operations.ts';
import { QuotaSummary } from './quota.ts';
import { StateBadge, VmActions } from './vm-actions.ts';
import { UploadImage } from './uploads.ts';

export function VmListPage() {
  const creating = useSignal(false);
  const uploading = useSignal(false);
  const admin = me.value?.role === 'admin';
  return html`
    <main class="page">
      <div class="page-head">
        <h1>Virtual machines</h1>
        <span>
          <button id="upload-image-button" onClick=${() => (uploading.value = true)} disabled=${uploading.value}>Upload image</button>
          <button id="create-vm-button" class="primary" onClick=${() => (creating.value = true)} disabled=${creating.value}>New VM</button>
        </span>
      </div>
      <${QuotaSummary} />
      ${uploading.value && html`<${UploadImage} onDone=${() => (uploading.value = false)} />`}
      ${creating.value && html`<${CreateVm} onDone=${() => (creating.value = false)} />`}
      <section class="card">
        ${
          !vmsLoaded.value
            ? html`<p class="muted">Loading…</p>`
            : vms.value.length === 0
              ? html`<p class="muted" id="vm-list-empty">No VMs yet: create one.</p>`
              : html`
        <table class="vms" id="vm-list">
          <thead><tr><th>Name</th><th>State</th><th>Image</th><th>Memory</th><th>vCPUs</th>${admin && html`<th>Owner</th>`}<th></th><th>Actions</th></tr></thead>
          <tbody>
            ${vms.value.map(
              (vm) => html`
              <tr key=${vm.id} id=${`vm-${vm.name}-row`}>
                <td><a href=${`/vms/${encodeURIComponent(vm.name)}`} id=${`vm-${vm.name}-link`}>${vm.name}</a></td>
                <td><${StateBadge} vm=${vm} /></td>
                <td>${vm.template ? html`<span class="muted">template</span> ` : ''}${vm.from ? `clone of ${vm.from}` : (vm.image ?? vm.cdrom ?? '—')}</td>
                <td>${vm.memoryMiB} MiB</td>
                <td>${vm.cpus}</td>
                ${admin && html`<td>${vm.owner}</td>`}
                <td>${['running', 'paused'].includes(vm.state) && html`<a href=${`/vms/${encodeURIComponent(vm.name)}/console`} id=${`vm-${vm.name}-console`}>Console</a>`}</td>
                <td><${VmActions} vm=${vm} /></td>
              </tr>`,
            )}
          </tbody>
        </table>`
        }
      </section>
      <${OperationsPanel} />
    </main>`;
}
