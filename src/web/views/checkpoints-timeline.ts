// The timeline of a VM's checkpoints, newest first, under a "Now" row for the running VM (as Proxmox's snapshot
// tree has "NOW"): time, manual or scheduled, size written, pause, how the disk was included, parent; and per
// checkpoint restore (in place, confirmed: the current state is lost), restore as a new VM, verify, delete.
import type { Checkpoint, Vm } from '../lib/api.ts';
import { ago, formatBytes, formatMs, formatTime } from '../lib/format.ts';
import { html } from '../lib/html.ts';

/** What the last verify said, to mark the rows it checked. */
export interface VerifyOutcome { ok: boolean; checked: string[]; broken: string[]; at: string; error?: string }

export type RowAction = 'restore' | 'restore-as' | 'verify' | 'delete';

const DISK: Record<string, [string, string]> = {
  full: ['full', 'The whole disk as it was (a full image)'],
  incremental: ['incremental', 'The disk clusters written since the parent checkpoint'],
};

function ParentCell({ c, byId }: { c: Checkpoint; byId: Map<string, Checkpoint> }) {
  if (!c.parent) return html`<span class="muted">—</span>`;
  const p = byId.get(c.parent);
  return p
    ? html`<a href=${`#checkpoint-${p.id}`} title=${p.id} onClick=${(e: Event) => {
        e.preventDefault();
        document.getElementById(`checkpoint-${p.id}`)?.scrollIntoView({ block: 'center' });
      }}>${formatTime(p.createdAt)}</a>`
    : html`<span class="muted" title=${c.parent}>deleted</span>`;
}

export function Timeline({ vm, list, verify, pruned, busy, highlight, onAction }: {
  vm: Vm;
  list: Checkpoint[];
  verify: VerifyOutcome | null;
  /** Ids a prune dry run would delete. */
  pruned: Set<string>;
  /** Why row actions are unavailable now (another checkpoint operation on this VM runs), or null. */
  busy: string | null;
  highlight: string | null;
  onAction: (a: RowAction, c: Checkpoint) => void;
}) {
  const byId = new Map(list.map((c) => [c.id, c]));
  const newest = [...list].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  const button = (a: RowAction, c: Checkpoint, label: string, title: string, cls = '') => html`
    <button class=${`small ${cls}`} id=${`checkpoint-${c.id}-${a}`} disabled=${!!busy} title=${busy ?? title}
      onClick=${() => onAction(a, c)}>${label}</button>`;
  return html`
    <table class="vms cp-timeline" id="checkpoint-timeline">
      <thead><tr><th>Time</th><th>Kind</th><th>Written</th><th>Pause</th><th>Disk</th><th>Parent</th><th>Actions</th></tr></thead>
      <tbody>
        <tr class="cp-now" id="checkpoint-now">
          <td><strong>Now</strong></td>
          <td colspan="6" class="muted">${vm.name} as it is (${vm.state})${newest[0] ? html`, changed since the checkpoint of ${formatTime(newest[0].createdAt)}` : ': no checkpoint yet'}</td>
        </tr>
        ${newest.map((c) => {
          const v =
            verify &&
            (verify.broken.includes(c.id) ? 'broken' : verify.checked.includes(c.id) && verify.ok ? 'ok' : null);
          return html`
          <tr key=${c.id} id=${`checkpoint-${c.id}`} data-id=${c.id} data-kind=${c.kind}
            class=${[pruned.has(c.id) ? 'cp-would-prune' : '', highlight === c.id ? 'cp-new' : ''].join(' ')}>
            <td class="cp-time" title=${c.id}>
              <div>${formatTime(c.createdAt)}</div>
              <div class="muted small">${ago(c.createdAt)}${c.label ? html` · <span class="cp-label">${c.label}</span>` : ''}</div>
            </td>
            <td><span class=${`kind kind-${c.kind}`}>${c.kind}</span>
              ${pruned.has(c.id) && html` <span class="kind kind-prune" title="The prune preview would delete it">would be pruned</span>`}
              ${v === 'ok' && html` <span class="cp-verified" title=${`Every hash matched (${formatTime(verify!.at)})`}>verified ✓</span>`}
              ${v === 'broken' && html` <span class="cp-broken" title=${verify!.error ?? ''}>corrupt ✗</span>`}</td>
            <td class="cp-size" data-bytes=${c.newBytes + c.diskBytes}
              title=${`RAM and device state added over the previous checkpoint: ${formatBytes(c.newBytes)}; disk image: ${formatBytes(c.diskBytes)}`}>
              ${formatBytes(c.newBytes + c.diskBytes)}</td>
            <td class="cp-pause" data-ms=${c.pauseMs ?? ''} title=${`The guest stood still this long; the whole capture took ${formatMs(c.durationMs)}`}>${formatMs(c.pauseMs)}</td>
            <td class="cp-disk" data-disk=${c.diskMode ?? 'none'} title=${c.diskMode ? DISK[c.diskMode]![1] : 'The VM has no disk (a kernel booted directly)'}>
              ${c.diskMode ? html`${DISK[c.diskMode]![0]} <span class="muted">${formatBytes(c.diskBytes)}</span>` : html`<span class="muted">no disk</span>`}</td>
            <td class="cp-parent"><${ParentCell} c=${c} byId=${byId} /></td>
            <td><div class="actions">
              ${button('restore', c, 'Restore', `Bring ${vm.name} back to this checkpoint (what happened since is lost)`)}
              ${button('restore-as', c, 'Restore as new VM…', 'Start a new VM from this checkpoint; this VM is not touched')}
              ${button('verify', c, 'Verify', 'Check every hash of this checkpoint')}
              ${button('delete', c, 'Delete', 'Delete this checkpoint (its disk changes merge into the next one)', 'danger')}
            </div></td>
          </tr>`;
        })}
      </tbody>
    </table>`;
}
