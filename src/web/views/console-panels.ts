// The console's agent panels: the clipboard panel (what the guest copied, with a Copy button; text or a picture to
// give the guest) and the list of file transfers to the guest (progress, cancel, the guest's errors). They show
// the state kept by the framework-free parts (console/clipboard.ts, console/file-drop.ts); `tick` props make them
// re-render when that state changes.
import { useSignal } from '@preact/signals';
import { useRef } from 'preact/hooks';
import { html } from '../lib/html.ts';
import { formatSize, type ClipboardBridge } from '../../spice-web/clipboard.ts';
import type { FileQueue, Transfer } from '../../spice-web/file-drop.ts';

export type ClipboardMode = 'shared' | 'panel' | 'off';

export function clipboardMode(cb: ClipboardBridge | undefined): ClipboardMode {
  if (!cb?.available) return 'off';
  return cb.seamless && !cb.needsPanel ? 'shared' : 'panel';
}

export function clipboardStatus(cb: ClipboardBridge): string {
  if (!cb.available)
    return 'The guest has no agent (spice-vdagent) connected: no shared clipboard. "Type" can still type text as keys.';
  if (cb.readAccess === 'unavailable' && cb.writeAccess === 'unavailable') {
    return 'This page cannot reach your clipboard (browsers allow it only over https or on localhost): copy and paste through this panel.';
  }
  if (cb.writeAccess === 'denied')
    return 'This site may not write your clipboard: what the guest copies shows up here, with a Copy button.';
  if (cb.needsPanel) return 'What the guest copied could not be put on your clipboard: it is below.';
  if (cb.readAccess === 'denied')
    return 'This site may not read your clipboard: paste with Ctrl+V in the console, or here. Copying from the guest works.';
  if (cb.readAccess === 'prompt')
    return 'Allow clipboard access to share it both ways by itself (Ctrl+V in the console works without it).';
  if (cb.readAccess === 'unknown')
    return 'Copy in the guest, paste here; Ctrl+V in the console gives the guest your clipboard.';
  if (!cb.autoShare)
    return 'What the guest copies reaches your clipboard; yours reaches the guest when you press Ctrl+V in the console.';
  return 'Shared both ways: copy in the guest and paste here, copy here and paste in the guest.';
}

export function ClipboardPanel({ cb, tick, onClose }: { cb: ClipboardBridge; tick: number; onClose: () => void }) {
  const local = useSignal('');
  const localPng = useSignal<{ png: Uint8Array; url: string } | null>(null);
  const guestField = useRef<HTMLTextAreaElement>(null);
  const g = cb.guest;
  const canRequest = cb.available && (cb.readAccess === 'prompt' || cb.readAccess === 'denied');
  const onPaste = (e: ClipboardEvent) => {
    const dt = e.clipboardData;
    if (!dt) return;
    for (const it of dt.items) {
      if (it.kind !== 'file' || it.type !== 'image/png') continue;
      const f = it.getAsFile();
      if (!f) continue;
      e.preventDefault();
      void f.arrayBuffer().then((b) => {
        if (localPng.value) URL.revokeObjectURL(localPng.value.url);
        localPng.value = { png: new Uint8Array(b), url: URL.createObjectURL(f) };
      });
      return;
    }
  };
  const send = async (e: Event) => {
    e.preventDefault();
    const p = localPng.value;
    await cb.sendToGuest(p ? { png: p.png, text: local.value || undefined } : { text: local.value });
  };
  return html`
    <section class="console-panel console-clipboard" id="console-clipboard" data-tick=${tick}>
      <div class="console-panel-head">
        <strong>Clipboard</strong>
        <span class="muted" id="console-clip-status" data-mode=${clipboardMode(cb)}>${clipboardStatus(cb)}</span>
        ${canRequest && html`<button class="small" id="console-clip-allow" onClick=${() => cb.requestAccess()}>Allow clipboard access</button>`}
        <span class="spacer"></span>
        <label class="small" title="Send your clipboard to the guest when you come back to the console, not only on Ctrl+V">
          <input type="checkbox" id="console-clip-auto" checked=${cb.autoShare}
            onChange=${(e: Event) => cb.setAutoShare((e.target as HTMLInputElement).checked)} />
          Share my clipboard automatically
        </label>
        <button class="small" id="console-clip-close" onClick=${onClose} aria-label="Close the clipboard panel">×</button>
      </div>
      <div class="clip-grid">
        <div class="clip-side">
          <h4>From the guest${g && html` <span class="muted small">(${new Date(g.at).toLocaleTimeString()})</span>`}</h4>
          ${!g && html`<p class="muted small" id="console-clip-guest-empty">Nothing copied in the guest yet.</p>`}
          ${g?.text !== undefined && html`<textarea id="console-clip-guest" readonly rows="4" ref=${guestField} value=${g.text}></textarea>`}
          ${g?.imageUrl && html`<img id="console-clip-guest-image" class="clip-image" src=${g.imageUrl} alt="Picture copied in the guest" />`}
          ${
            g &&
            html`<div class="clip-buttons">
            <button id="console-clip-copy" onClick=${() => cb.copyGuestToLocal(guestField.current ?? undefined)}>Copy to this computer</button>
            ${g.imageUrl && html`<a id="console-clip-download" href=${g.imageUrl} download="guest-clipboard.png">Download the picture</a>`}
          </div>`
          }
        </div>
        <form class="clip-side" onSubmit=${send}>
          <h4>To the guest</h4>
          <textarea id="console-clip-local" rows="4" placeholder="Type or paste text (or paste a picture) here, then send it: a paste in the guest gets it."
            value=${local.value} onInput=${(e: Event) => (local.value = (e.target as HTMLTextAreaElement).value)} onPaste=${onPaste}></textarea>
          ${
            localPng.value &&
            html`<div class="clip-local-image"><img class="clip-image" src=${localPng.value.url} alt="Picture to send" />
            <button type="button" class="small" onClick=${() => {
              URL.revokeObjectURL(localPng.value!.url);
              localPng.value = null;
            }}>Remove the picture</button></div>`
          }
          <div class="clip-buttons">
            <button id="console-clip-send" disabled=${!cb.available || (!local.value && !localPng.value)}>Send to the guest's clipboard</button>
            ${cb.sent && html`<span class="muted small" id="console-clip-sent">Sent at ${new Date(cb.sent.at).toLocaleTimeString()}</span>`}
          </div>
        </form>
      </div>
      ${cb.message && html`<p id="console-clip-message" class=${cb.message.kind === 'error' ? 'error' : 'muted'}>${cb.message.text}</p>`}
    </section>`;
}

function percent(t: Transfer): number {
  return t.size ? Math.floor((t.sent / t.size) * 100) : t.state === 'done' ? 100 : 0;
}

function transferLine(t: Transfer): string {
  switch (t.state) {
    case 'queued':
      return `${formatSize(t.size)} · waiting`;
    case 'sending': {
      const secs = (Date.now() - (t.startedAt ?? Date.now())) / 1000;
      const rate = secs > 1 ? ` · ${formatSize(t.sent / secs)}/s` : '';
      return `${formatSize(t.sent)} of ${formatSize(t.size)} · ${percent(t)}%${rate}`;
    }
    case 'done': {
      const secs = ((t.endedAt ?? 0) - (t.startedAt ?? 0)) / 1000;
      return `${formatSize(t.size)} · in the guest's Downloads folder${secs >= 1 ? ` (${secs.toFixed(0)} s)` : ''}`;
    }
    case 'cancelled':
      return `cancelled at ${formatSize(t.sent)} of ${formatSize(t.size)}`;
    case 'failed':
      return `failed at ${formatSize(t.sent)} of ${formatSize(t.size)}`;
  }
}

export function TransfersPanel({ files, tick, message, onDismissMessage }: {
  files: FileQueue; tick: number; message: string; onDismissMessage: () => void;
}) {
  const list = files.transfers;
  const finished = list.some((t) => !['queued', 'sending'].includes(t.state));
  return html`
    <section class="console-panel console-transfers" id="console-transfers" data-tick=${tick}>
      <div class="console-panel-head">
        <strong>Files to the guest</strong>
        <span class="muted small">saved in the guest user's Downloads folder</span>
        <span class="spacer"></span>
        ${finished && html`<button class="small" id="console-xfer-clear" onClick=${() => files.clearFinished()}>Clear finished</button>`}
      </div>
      ${
        message &&
        html`<p class="error xfer-message" id="console-xfer-message">${message}
        <button class="small" onClick=${onDismissMessage} aria-label="Dismiss">×</button></p>`
      }
      <ul class="xfers">
        ${list.map(
          (t) => html`
          <li key=${t.id} id=${`xfer-${t.id}`} class=${`xfer xfer-${t.state}`} data-state=${t.state} data-sent=${t.sent} data-size=${t.size}
            data-code=${t.code ?? ''} data-via=${t.via ?? ''}
            title=${t.via === 'webdav' ? 'through the shared-folder channel (fast)' : t.via ? 'through the SPICE agent' : ''}>
            <div class="xfer-head">
              <span class="xfer-name" title=${t.name}>${t.name}</span>
              <span class="muted small xfer-bytes">${transferLine(t)}</span>
              <span class="spacer"></span>
              ${
                ['queued', 'sending'].includes(t.state)
                  ? html`<button class="small" id=${`xfer-${t.id}-cancel`} onClick=${() => files.cancel(t.id)}>Cancel</button>`
                  : html`<button class="small" id=${`xfer-${t.id}-dismiss`} onClick=${() => files.dismiss(t.id)} aria-label="Dismiss">×</button>`
              }
            </div>
            ${
              ['queued', 'sending', 'done'].includes(t.state) &&
              html`<div class="progress" role="progressbar" aria-valuenow=${percent(t)} aria-valuemin="0" aria-valuemax="100">
              <div class="bar" style=${`width:${percent(t)}%`}></div></div>`
            }
            ${t.error && html`<div class="error small" id=${`xfer-${t.id}-error`}>${t.error}</div>`}
          </li>`,
        )}
      </ul>
    </section>`;
}
