// The tail of the guest's serial log (this boot) or of QEMU's own log; reloaded on demand and when the VM's state
// changes (the serial console tab is the live view).
import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { client, type Vm } from '../lib/api.ts';
import { html } from '../lib/html.ts';

export function LogTail({ vm }: { vm: Vm }) {
  const source = useSignal<'serial' | 'qemu'>('serial');
  const text = useSignal('');
  const error = useSignal('');
  const load = async () => {
    try {
      const r = await client.vms.log(vm.name, { source: source.value, lines: 300 });
      text.value = r.text;
      error.value = '';
    } catch (e) {
      error.value = (e as Error).message;
    }
  };
  useEffect(() => void load(), [vm.name, vm.state, source.value]);
  return html`
    <div class="log">
      <div class="console-toolbar">
        <label class="inline">Log <select id="log-source" value=${source.value} onChange=${(e: Event) => (source.value = (e.target as HTMLSelectElement).value as 'serial' | 'qemu')}>
          <option value="serial">Guest serial console</option><option value="qemu">QEMU</option></select></label>
        <button id="log-refresh" onClick=${load}>Refresh</button>
      </div>
      ${error.value && html`<p class="error">${error.value}</p>`}
      <pre id="log-tail" class="log-text">${text.value || '(empty)'}</pre>
    </div>`;
}
