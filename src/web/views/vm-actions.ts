// The lifecycle buttons of one VM, enabled by state; a disabled button says why. Delete asks first.
import type { Vm } from '../lib/api.ts';
import { html } from '../lib/html.ts';
import { actionExcuse, busy, vmAction, type VmAction } from '../lib/state.ts';
import { confirmDialog } from './confirm.ts';

const ACTIONS: { a: VmAction; label: string; cls?: string }[] = [
  { a: 'start', label: 'Start', cls: 'primary' },
  { a: 'stop', label: 'Shut down' },
  { a: 'force-stop', label: 'Force off' },
  { a: 'pause', label: 'Pause' },
  { a: 'resume', label: 'Resume' },
  { a: 'reset', label: 'Reset' },
  { a: 'delete', label: 'Delete', cls: 'danger' },
];

export function VmActions({ vm }: { vm: Vm }) {
  const run = async (a: VmAction) => {
    if (
      a === 'delete' &&
      !(await confirmDialog(`Delete ${vm.name}?`, `The VM and its disk overlay are deleted. This cannot be undone.`))
    )
      return;
    if (
      a === 'force-stop' &&
      !(await confirmDialog(
        `Force off ${vm.name}?`,
        'Like pulling the plug: unsaved data in the guest is lost.',
        'Force off',
      ))
    )
      return;
    await vmAction(vm.name, a);
  };
  return html`
    <div class="actions">
      ${ACTIONS.map(({ a, label, cls }) => {
        const excuse = actionExcuse(vm, a);
        const working = busy.value.has(`${vm.name}:${a}`);
        return html`<button id=${`vm-${vm.name}-${a}`} class=${cls ?? ''} disabled=${!!excuse || working}
          title=${excuse ?? label} onClick=${() => run(a)}>${working ? `${label}…` : label}</button>`;
      })}
    </div>`;
}

export function StateBadge({ vm }: { vm: Vm }) {
  return html`<span id=${`vm-${vm.name}-state`} class=${`state state-${vm.state}`} data-state=${vm.state}
    title=${vm.stateReason ?? vm.state}>${vm.state}</span>`;
}
