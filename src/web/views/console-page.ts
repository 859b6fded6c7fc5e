// The full-window console page (/vms/NAME/console), the URL to share with another signed-in user who may see the
// VM. On the page's critical path: its script starts the SPICE session itself (main.ts, console/preconnect.ts).
import { enc } from '../lib/api.ts';
import { html } from '../lib/html.ts';
import { ConsoleView } from './console-view.ts';
import { Missing, useVm } from './use-vm.ts';
import { StateBadge } from './vm-actions.ts';

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
