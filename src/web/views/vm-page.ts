// One VM: details, lifecycle, its consoles (SPICE, serial, log) and checkpoints in tabs. The full-window console
// page is console-page.ts.
import { enc, type Vm } from '../lib/api.ts';
import { html } from '../lib/html.ts';
import { lazyView } from '../lib/lazy.ts';
import { navigate, query } from '../lib/router.ts';
import { ConsoleView } from './console-view.ts';
import { LogTail } from './log-tail.ts';
import { OperationsPanel } from './operations.ts';
import { Missing, useVm } from './use-vm.ts';
import { StateBadge, VmActions } from './vm-actions.ts';

// The tabs behind a click: their code (uPlot, xterm.js) is fetched when first shown.
const CheckpointsTab = lazyView(() => import('./checkpoints.ts'), 'CheckpointsTab');
const SerialTerminal = lazyView(() => import('./serial-terminal.ts'), 'SerialTerminal');

const TABS = [
  ['console', 'Console'],
  ['serial', 'Serial console'],
  ['log', 'Log'],
  ['checkpoints', 'Checkpoints'],
] as const;

/** How the guest's RAM is backed: what the running QEMU has (and why not huge pages), or what the VM asks for. */
function ramNote(vm: Vm): string {
  if (vm.hugepagesNow === true) return ', in huge pages';
  if (vm.hugepagesNow === false) return `, ordinary memory${vm.hugepagesWhy ? ` (${vm.hugepagesWhy})` : ''}`;
  return vm.hugepages === true ? ', huge pages always' : vm.hugepages === false ? ', ordinary memory' : '';
}

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
        <dt>Memory</dt><dd id="vm-ram">${vm.memoryMiB} MiB${ramNote(vm)}</dd>
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
