// The console toolbar's USB buttons (src/spice-web/usb.ts does the redirecting): "USB device…" asks the browser for
// a device of this computer and redirects it to the VM; each redirected device has its own button to unplug it.
// Nothing is shown where the browser has no WebUSB.
import { html } from '../lib/html.ts';
import type { ConsoleUsb } from '../../spice-web/usb.ts';

/** `tick` changes whenever the USB state does (SpiceConsole onUsbChange), so the buttons re-render. */
export function UsbButtons(
  { usb, tick, connected }: { usb: ConsoleUsb | undefined; tick: number; connected: boolean },
) {
  if (!usb?.available) return null;
  return html`<span class="console-usb" data-tick=${tick}>
    <button id="console-usb" disabled=${!connected || usb.busy} onClick=${() => void usb.pick()}
      title="Redirect a USB device of this computer to the VM (the browser asks which)">USB device…</button>
    ${usb.redirected.map((r) => html`<button class="console-usb-device" id=${`console-usb-${r.id}`}
      onClick=${() => void usb.unplug(r.id)} title="Unplug it from the VM">⏏ ${r.name}</button>`)}
    ${usb.message && html`<span class="muted small" id="console-usb-message">${usb.message}</span>`}
  </span>`;
}
