// New VM: name, source (a built or uploaded image, an uploaded ISO with an empty disk and a firmware, or a template
// to clone), memory, vCPUs, huge-page RAM, OpenCL by API remoting (and its zero-copy window); optionally started at
// once. The server validates (one set of
// rules for API, CLI and UI) and its message is shown as is.
import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import { client, type Network } from '../lib/api.ts';
import { html } from '../lib/html.ts';
import { images, me, notify, upsertVm, vmAction, vms } from '../lib/state.ts';
import { loadUploads, uploaded } from './uploads.ts';

export function CreateVm({ onDone }: { onDone: () => void }) {
  const name = useSignal('');
  // 'NAME' (an image), 'iso:NAME' (install from an uploaded ISO), 'from:NAME' (a linked clone of a template).
  const image = useSignal(images.value.find((i) => i.built)?.name ?? images.value[0]?.name ?? '');
  const diskGiB = useSignal(20);
  const firmware = useSignal<'bios' | 'uefi'>('bios');
  useEffect(() => void loadUploads(), []);
  const iso = image.value.startsWith('iso:') ? image.value.slice(4) : undefined;
  const from = image.value.startsWith('from:') ? image.value.slice(5) : undefined;
  const memory = useSignal(256);
  const cpus = useSignal(1);
  const start = useSignal(true);
  const hugepages = useSignal<'auto' | 'always' | 'never'>('auto');
  const opencl = useSignal(false);
  const openclWindow = useSignal(256);
  const networks = useSignal<Network[]>([]);
  const chosen = useSignal<string[]>([]);
  useEffect(() => { client.networks.list().then((n) => (networks.value = n), () => undefined); }, []);
  const error = useSignal('');
  const working = useSignal(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    working.value = true;
    error.value = '';
    try {
      const vm = await client.vms.create({
        name: name.value.trim(),
        ...(iso ? { cdrom: iso, diskBytes: Math.round(diskGiB.value * 2 ** 30), firmware: firmware.value }
          : from ? { from } : { image: image.value }),
        memoryMiB: memory.value,
        cpus: cpus.value,
        ...(hugepages.value === 'auto' ? {} : { hugepages: hugepages.value === 'always' }),
        ...(opencl.value ? { opencl: true, openclWindowMiB: openclWindow.value } : {}),
        ...(chosen.value.length ? { networks: chosen.value } : {}),
      });
      upsertVm(vm);
      onDone();
      if (start.value) await vmAction(vm.name, 'start');
    } catch (err) {
      error.value = (err as Error).message;
    } finally {
      working.value = false;
    }
  };
  const build = async (n: string) => {
    try {
      await client.images.build(n);
      notify(`Building image ${n}: see Operations`, 'info');
    } catch (err) {
      notify((err as Error).message);
    }
  };
  const selected = images.value.find((i) => i.name === image.value);
  const val = (e: Event) => (e.target as HTMLInputElement).value;
  return html`
    <form class="card create" id="create-vm-form" onSubmit=${submit}>
      <h2>New virtual machine</h2>
      <div class="grid">
        <label>Name <input id="create-name" required pattern="[a-z0-9][a-z0-9._\\-]{0,62}" title="lower-case letters, digits, '.', '_' or '-'"
          value=${name.value} onInput=${(e: Event) => (name.value = val(e))} autofocus /></label>
        <label>Image
          <select id="create-image" value=${image.value} onChange=${(e: Event) => (image.value = val(e))}>
            ${images.value.map((i) => html`<option value=${i.name}>${i.name}${i.built ? '' : ' (not built)'} — ${i.description}</option>`)}
            ${uploaded.value.filter((u) => u.state === 'ready').map((u) => u.kind === 'iso'
              ? html`<option value=${`iso:${u.name}`}>${u.name} — install from this ISO (CD-ROM)</option>`
              : html`<option value=${u.name}>${u.name} — uploaded ${u.format} disk</option>`)}
            ${vms.value.filter((v) => v.template).map((v) => html`<option value=${`from:${v.name}`}>${v.name} — linked clone of this template</option>`)}
          </select>
        </label>
        ${iso && html`
        <label>Disk (GiB) <input id="create-disk" type="number" min="1" step="1" value=${diskGiB.value} onInput=${(e: Event) => (diskGiB.value = Number(val(e)))} /></label>
        <label>Firmware
          <select id="create-firmware" value=${firmware.value} onChange=${(e: Event) => (firmware.value = val(e) as 'bios' | 'uefi')}>
            <option value="bios">BIOS</option><option value="uefi">UEFI</option>
          </select>
        </label>`}
        <label>Memory (MiB) <input id="create-memory" type="number" min="64" step="16" value=${memory.value} onInput=${(e: Event) => (memory.value = Number(val(e)))} /></label>
        <label>vCPUs <input id="create-cpus" type="number" min="1" max="64" value=${cpus.value} onInput=${(e: Event) => (cpus.value = Number(val(e)))} /></label>
      </div>
      ${
        selected &&
        !selected.built &&
        html`<p class="hint">This image is not built yet.
        ${me.value?.role === 'admin' ? html`<button type="button" id="create-build-image" onClick=${() => build(selected.name)}>Build it</button>` : 'Ask an admin to build it.'}</p>`
      }
      <label title="Guest RAM in 2 MiB huge pages: live checkpoints then pause the VM a few ms at any size, instead of tens. When possible: whenever the server can reserve them from the host (it runs as root), at each start.">Guest RAM
        <select id="create-hugepages" value=${hugepages.value} onChange=${(e: Event) => (hugepages.value = (e.target as HTMLSelectElement).value as typeof hugepages.value)}>
          <option value="auto">huge pages when possible</option>
          <option value="always">huge pages always (a start fails without them)</option>
          <option value="never">ordinary memory</option>
        </select></label>
      <label class="check" title="Programs in the guest use the host's OpenCL device through Oriel's ICD (images that carry it, such as tiny-opencl); buffers in the zero-copy window are shared with the host, not copied.">
        <input id="create-opencl" type="checkbox" checked=${opencl.value} onChange=${(e: Event) => (opencl.value = (e.target as HTMLInputElement).checked)} /> OpenCL <span class="muted small">(the host's compute device, by API remoting)</span></label>
      ${opencl.value && html`<label>Zero-copy window (MiB)
        <select id="create-opencl-window" value=${String(openclWindow.value)} onChange=${(e: Event) => (openclWindow.value = Number(val(e)))}>
          ${[16, 32, 64, 128, 256, 512, 1024, 2048].map((n) => html`<option value=${String(n)}>${n}</option>`)}
        </select> <span class="muted small">host shared memory, counted in the memory quota</span></label>`}
      ${networks.value.length > 0 && html`<fieldset class="networks" id="create-networks"><legend>Networks</legend>
        ${networks.value.map((n) => html`<label class="check" key=${n.id}><input type="checkbox" value=${n.name}
          id=${`create-network-${n.name}`} checked=${chosen.value.includes(n.name)} onChange=${(e: Event) => {
            const on = (e.target as HTMLInputElement).checked;
            chosen.value = on ? [...chosen.value, n.name] : chosen.value.filter((x) => x !== n.name);
          }} /> ${n.name} <span class="muted small">${n.subnet}</span></label>`)}</fieldset>`}
      <label class="check"><input id="create-start" type="checkbox" checked=${start.value} onChange=${(e: Event) => (start.value = (e.target as HTMLInputElement).checked)} /> Start it now</label>
      ${error.value && html`<p class="error" id="create-error" role="alert">${error.value}</p>`}
      <div class="buttons">
        <button type="button" onClick=${onDone}>Cancel</button>
        <button id="create-submit" class="primary" disabled=${working.value}>${working.value ? 'Creating…' : 'Create'}</button>
      </div>
    </form>`;
}
