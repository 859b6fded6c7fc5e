// Uploading an ISO or a disk image from the browser: sent in chunks from the File (never read whole), resumable
// (choosing the same file under the same name again continues where it stopped), with progress; and the list of
// the images uploaded so far, which the create form offers.
import { signal, useSignal } from '@preact/signals';
import { client } from '../lib/api.ts';
import { formatBytes } from '../lib/format.ts';
import { html } from '../lib/html.ts';
import { notify } from '../lib/state.ts';
import type { UploadedImage } from '../../api/images.ts';

export const uploaded = signal<UploadedImage[]>([]);

export async function loadUploads(): Promise<void> {
  try {
    uploaded.value = await client.uploads.list();
  } catch (e) {
    notify((e as Error).message);
  }
}

export function UploadImage({ onDone }: { onDone: () => void }) {
  const name = useSignal('');
  const file = useSignal<File | null>(null);
  const done = useSignal(0);
  const working = useSignal(false);
  const error = useSignal('');
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = file.value;
    if (!f) return;
    working.value = true;
    error.value = '';
    try {
      const img = await client.uploads.send(name.value.trim(), {
        size: f.size,
        read: async (s, end) => new Uint8Array(await f.slice(s, end).arrayBuffer()),
      }, (d) => (done.value = d));
      notify(`Image ${img.name} is ready (${img.kind === 'iso' ? 'ISO' : `${img.format} disk`})`, 'info');
      await loadUploads();
      onDone();
    } catch (err) {
      error.value = (err as Error).message;
    } finally {
      working.value = false;
    }
  };
  const pick = (e: Event) => {
    const f = (e.target as HTMLInputElement).files?.[0] ?? null;
    file.value = f;
    if (f && !name.value) name.value = f.name.toLowerCase().replace(/\.[^.]*$/, '').replace(/[^a-z0-9._-]+/g, '-').slice(0, 63);
  };
  const total = file.value?.size ?? 0;
  return html`
    <form class="card create" id="upload-form" onSubmit=${submit}>
      <h2>Upload an image</h2>
      <p class="muted small">An ISO to install from (New VM → CD-ROM), or a qcow2/raw disk image. It counts against your disk quota.</p>
      <div class="grid">
        <label>File <input id="upload-file" type="file" required onChange=${pick} /></label>
        <label>Name <input id="upload-name" required pattern="[a-z0-9][a-z0-9._\\-]{0,62}" value=${name.value}
          onInput=${(e: Event) => (name.value = (e.target as HTMLInputElement).value)} /></label>
      </div>
      ${working.value && html`<div class="progress" id="upload-progress"><div class="bar" style=${`width:${total ? (100 * done.value) / total : 0}%`}></div></div>
        <p class="muted small">${formatBytes(done.value)} of ${formatBytes(total)}</p>`}
      ${error.value && html`<p class="error" id="upload-error" role="alert">${error.value}</p>`}
      <div class="buttons">
        <button type="button" onClick=${onDone}>Close</button>
        <button id="upload-submit" class="primary" disabled=${working.value || !file.value}>${working.value ? 'Uploading…' : 'Upload'}</button>
      </div>
    </form>`;
}
