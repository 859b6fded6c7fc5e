// One VM: details, lifecycle, its consoles (SPICE, serial, log) and checkpoints in tabs; and the full-window console
// page (/vms/NAME/console), the URL to share with another signed-in user who may see the VM.
import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { api, enc, type Vm } from '../lib/api.ts';
import { CheckpointsTab } from './checkpoints.ts';
import { html } from '../lib/html.ts';
import { navigate, query } from '../lib/router.ts';
import { upsertVm, vms, vmsLoaded } from '../lib/store.ts';
import { ConsoleView } from './console-view.ts';
import { LogTail } from './log-tail.ts';
import { OperationsPanel } from './operations.ts';
import { SerialTerminal } from './serial-terminal.ts';
import { StateBadge, VmActions } from './vm-actions.ts';

/** The VM from the live list, or fetched once (so a 403/404 is shown with the server's reason). */
function useVm(name: string): { vm?: Vm; error?: string } {
  const error = useSignal('');
  const vm = vms.value.find((v) => v.name === name);
  useEffect(() => {
    if (vm || !vmsLoaded.value) return;
    api<Vm>('GET', `/api/vms/${enc(name)}`).then(upsertVm, (e: Error) => (error.value = e.message));
  }, [name, !!vm, vmsLoaded.value]);
  return { vm, error: vm ? undefined : error.value || undefined };
}

function Missing({ name, error }: { name: string; error?: string }) {
  return html`<main class="page"><p class=${error ? 'error' : 'muted'} id="vm-missing">${error ?? `Loading ${name}…`}</p>
    <p><a href="/">All virtual machines</a></p></main>`;
}

const TABS = [
  ['console', 'Console'],
  ['serial', 'Serial console'],
  ['log', 'Log'],
  ['checkpoints', 'Checkpoints'],
] as const;

export function VmPage({ name }: { name: string }) {
  const { vm, error } = useVm(name);
  if (!vm) return html`<${Missing} name=${name} error=${error} />`;
  const tab = query('tab') ?? 'console';
  return html`
    <main class="page">
      <div class="page-head">
        <h1><a href="/" class="muted">Machines</a> / ${vm.name}</h1>
        <${StateBadge} vm=${vm} />
        <span class="spacer"></span>
        <${VmActions} vm=${vm} />
      </div>
      ${vm.stateReason && html`<p class="muted" id="vm-state-reason">${vm.stateReason}</p>`}
      <dl class="details card" id="vm-details">
        <dt>Image</dt><dd>${vm.image ?? '—'}</dd>
        <dt>Memory</dt><dd>${vm.memoryMiB} MiB</dd>
        <dt>vCPUs</dt><dd>${vm.cpus}</dd>
        <dt>Display</dt><dd>${vm.display}</dd>
        <dt>Acceleration</dt><dd>${vm.accel}</dd>
        <dt>Owner</dt><dd>${vm.owner}</dd>
        <dt>QEMU pid</dt><dd>${vm.pid ?? '—'}</dd>
        <dt>Created</dt><dd>${new Date(vm.createdAt).toLocaleString()}</dd>
      </dl>
      <nav class="tabs" role="tablist">
        ${TABS.map(
          ([
            id,
            label,
          ]) => html`<button role="tab" id=${`tab-${id}`} aria-selected=${tab === id} class=${tab === id ? 'active' : ''}
          onClick=${() => navigate(`/vms/${enc(vm.name)}${id === 'console' ? '' : `?tab=${id}`}`, true)}>${label}</button>`,
        )}
      </nav>
      <section class="card tab-body">
        ${tab === 'console' && html`<${ConsoleView} vm=${vm} />`}
        ${tab === 'serial' && html`<${SerialTerminal} vm=${vm} />`}
        ${tab === 'log' && html`<${LogTail} vm=${vm} />`}
        ${tab === 'checkpoints' && html`<${CheckpointsTab} vm=${vm} />`}
      </section>
      <${OperationsPanel} vm=${vm.name} />
    </main>`;
}

export function ConsolePage({ name }: { name: string }) {
  const { vm, error } = useVm(name);
  if (!vm) return html`<${Missing} name=${name} error=${error} />`;
  return html`
    <main class="console-page">
      <div class="console-page-head">
        <a href=${`/vms/${enc(vm.name)}`}>${vm.name}</a> <${StateBadge} vm=${vm} />
      </div>
      <${ConsoleView} vm=${vm} full=${true} />
    </main>`;
}
