// Networks: mine and shared ones (admins: all), with their VMs' leases and per-port counters; create and delete.
import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { client, enc, type Network } from '../lib/api.ts';
import { html } from '../lib/html.ts';
import { me, notify } from '../lib/state.ts';
import { confirmDialog } from './confirm.ts';

export function NetworksPage() {
  const nets = useSignal<Network[] | null>(null);
  const error = useSignal('');
  const name = useSignal('');
  const subnet = useSignal('');
  const nat = useSignal(false);
  const isolated = useSignal(false);
  const shared = useSignal(false);
  const reload = () => client.networks.list().then((v) => (nets.value = v), (e: Error) => (error.value = e.message));
  useEffect(() => { void reload(); }, []);
  const create = async (e: Event) => {
    e.preventDefault();
    error.value = '';
    try {
      await client.networks.create({
        name: name.value.trim(), ...(subnet.value.trim() ? { subnet: subnet.value.trim() } : {}),
        ...(nat.value ? { nat: true } : {}), ...(isolated.value ? { isolated: true } : {}),
        ...(shared.value ? { shared: true } : {}),
      });
      name.value = '';
      subnet.value = '';
      await reload();
    } catch (err) {
      error.value = (err as Error).message;
    }
  };
  const remove = async (n: Network) => {
    if (!(await confirmDialog(`Delete network ${n.name}?`, 'A network still in use by VMs cannot be deleted.'))) return;
    try {
      await client.networks.delete(n.name);
      await reload();
    } catch (err) {
      notify((err as Error).message);
    }
  };
  const val = (e: Event) => (e.target as HTMLInputElement).value;
  const checked = (e: Event) => (e.target as HTMLInputElement).checked;
  const flags = (n: Network) => [n.nat && 'NAT', n.isolated && 'isolated', n.shared && 'shared'].filter(Boolean).join(', ');
  return html`
    <main class="page">
      <div class="page-head"><h1>Networks</h1></div>
      <form class="card create" id="create-network-form" onSubmit=${create}>
        <h2>New network</h2>
        <div class="grid">
          <label>Name <input id="network-name" required pattern="[a-z][a-z0-9\\-]{0,30}" value=${name.value}
            title="lower-case letters, digits or '-', starting with a letter" onInput=${(e: Event) => (name.value = val(e))} /></label>
          <label>Subnet <input id="network-subnet" placeholder="automatic (10.x.y.0/24)" value=${subnet.value}
            onInput=${(e: Event) => (subnet.value = val(e))} /></label>
        </div>
        <label class="check"><input id="network-nat" type="checkbox" checked=${nat.value}
          onChange=${(e: Event) => (nat.value = checked(e))} /> Way out through the host (NAT)</label>
        <label class="check"><input id="network-isolated" type="checkbox" checked=${isolated.value}
          onChange=${(e: Event) => (isolated.value = checked(e))} /> Isolated <span class="muted small">(VMs reach the gateway only)</span></label>
        ${me.value?.role === 'admin' && html`<label class="check"><input id="network-shared" type="checkbox"
          checked=${shared.value} onChange=${(e: Event) => (shared.value = checked(e))} /> Shared with everybody</label>`}
        ${error.value && html`<p class="error" id="network-error" role="alert">${error.value}</p>`}
        <div class="buttons"><button id="network-submit" class="primary">Create</button></div>
      </form>
      <section class="card">
        ${!nets.value ? html`<p class="muted">Loading…</p>` : nets.value.length === 0
          ? html`<p class="muted">No networks yet.</p>` : html`
        <table class="vms" id="networks-list">
          <thead><tr><th>Name</th><th>Subnet</th><th>Gateway</th><th>Options</th><th>Owner</th><th>VMs</th><th></th></tr></thead>
          <tbody>${nets.value.map((n) => html`
            <tr key=${n.id} id=${`network-${n.name}-row`}>
              <td>${n.name}</td><td>${n.subnet}</td><td>${n.gateway}</td><td>${flags(n) || '-'}</td><td>${n.owner}</td>
              <td>${n.ports.map((p) => html`<div class="small" key=${`${p.vm}-${p.card}`}>
                <a href=${`/vms/${enc(p.vm)}`}>${p.vm}</a> ${p.ip} <span class="muted">${p.mac}</span>
                ${p.counters ? html` <span class="muted" title="frames in / out / dropped">
                  ${p.counters.rxFrames}↑ ${p.counters.txFrames}↓ ${p.counters.droppedSpoofed + p.counters.droppedMalformed
                    + p.counters.droppedUnsupported}✕</span>` : html` <span class="muted">(off)</span>`}</div>`)}</td>
              <td><button class="small danger" id=${`network-${n.name}-delete`} onClick=${() => remove(n)}>Delete</button></td>
            </tr>`)}
          </tbody>
        </table>`}
      </section>
    </main>`;
}
