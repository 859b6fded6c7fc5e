// The console toolbar's "Share a folder…" button (src/spice-web/shared-folder.ts does the sharing): picks a folder
// (read-write through showDirectoryPicker when granted, read-only from a webkitdirectory input otherwise), and stops
// sharing when pressed again.
import type { RefObject } from 'preact';
import { html } from '../lib/html.ts';
import type { SpiceConsole } from '../../spice-web/spice-console.ts';

export function shareFolderButton(
  con: SpiceConsole | null, input: RefObject<HTMLInputElement | null>, connected: boolean,
) {
  const folder = con?.shared.folder;
  const pickFallback = () =>
    new Promise<File[] | undefined>((resolve) => {
      const el = input.current;
      if (!el) return resolve(undefined);
      el.onchange = () => {
        resolve([...(el.files ?? [])]);
        el.value = '';
      };
      el.click();
    });
  const click = () => {
    if (!con) return;
    if (folder) con.shared.stop();
    else void con.shared.pick(pickFallback);
  };
  return html`<button id="console-share-folder" disabled=${!connected || !con?.shared.share} onClick=${click}
      data-shared=${folder ? (folder.readOnly ? 'read-only' : 'read-write') : 'none'}
      title=${folder ? 'Stop sharing (the guest sees it at ~/Shared)' : 'Share a folder of this computer with the guest (~/Shared)'}>
      ${folder ? `Sharing ${folder.name}${folder.readOnly ? ' (read-only)' : ''}` : 'Share a folder…'}</button>
    <input type="file" hidden webkitdirectory id="console-folder-input" ref=${input} />`;
}
