// A VM by name for a page: from the live list, or fetched once (so a 403/404 is shown with the server's reason).
import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { client, type Vm } from '../lib/api.ts';
import { html } from '../lib/html.ts';
import { upsertVm, vms, vmsLoaded } from '../lib/state.ts';

export function useVm(name: string): { vm?: Vm; error?: string } {
  const error = useSignal('');
  const vm = vms.value.find((v) => v.name === name);
  useEffect(() => {
    if (vm || !vmsLoaded.value) return;
    client.vms.get(name).then(upsertVm, (e: Error) => (error.value = e.message));
  }, [name, !!vm, vmsLoaded.value]);
  return { vm, error: vm ? undefined : error.value || undefined };
}

export function Missing({ name, error }: { name: string; error?: string }) {
  return html`<main class="page"><p class=${error ? 'error' : 'muted'} id="vm-missing">${error ?? `Loading ${name}…`}</p>
    <p><a href="/">All virtual machines</a></p></main>`;
}
