// The SPICE console in the page: the framework-free SpiceConsole (console/spice-console.ts) plus its toolbar:
// status, scaling, fullscreen, send-key menu and "type text". It connects while the VM runs and comes back by
// itself after a reconnect, a reboot, or the VM being started again.
import { useSignal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';
import type { Vm } from '../lib/api.ts';
import { html } from '../lib/html.ts';
import { SEND_KEY_COMBOS } from '../console/keymap.ts';
import { SpiceConsole, type ConsoleStatusEvent, type ScaleMode } from '../console/spice-console.ts';

const live = (vm: Vm | undefined) => !!vm && ['running', 'paused'].includes(vm.state);

declare global {
  interface Window {
    /** The console on this page (for debugging from the browser's developer tools, and for the e2e tests). */
    orielConsole?: SpiceConsole;
  }
}

export function ConsoleView({ vm, full = false }: { vm: Vm; full?: boolean }) {
  const host = useRef<HTMLDivElement>(null);
  const con = useRef<SpiceConsole | null>(null);
  const vmRef = useRef(vm);
  vmRef.current = vm;
  const status = useSignal<ConsoleStatusEvent>({ status: 'idle' });
  const size = useSignal('');
  const mouse = useSignal<'client' | 'server'>('server');
  const scale = useSignal<ScaleMode>('fit');
  const text = useSignal('');
  const typing = useSignal(false);
  const combo = useSignal(SEND_KEY_COMBOS[0]!.label);

  useEffect(() => {
    const c = new SpiceConsole({
      path: `/api/vms/${encodeURIComponent(vm.name)}/spice`,
      canReconnect: () => live(vmRef.current),
      onStatus: (e) => (status.value = e),
      onResize: (w, h) => (size.value = `${w}×${h}`),
      onMouseMode: (m) => (mouse.value = m),
    });
    con.current = c;
    window.orielConsole = c;
    host.current!.append(c.element);
    if (live(vmRef.current)) c.connect();
    return () => {
      c.dispose();
      if (window.orielConsole === c) delete window.orielConsole;
      con.current = null;
    };
  }, [vm.name]);

  // Follow the VM: connect when it runs, stop trying when it stops.
  const running = live(vm);
  useEffect(() => {
    const c = con.current;
    if (!c) return;
    if (running) {
      if (c.status.status === 'idle' || c.status.status === 'disconnected') c.connect();
      else c.reconnectNow();
    } else if (c.status.status !== 'idle') {
      c.disconnect();
    }
  }, [running]);

  const s = status.value;
  const label = !running ? `The VM is ${vm.state}` : {
    idle: 'Not connected',
    connecting: 'Connecting…',
    connected: 'Connected',
    reconnecting: `Reconnecting${s.retryInMs ? ` in ${Math.round(s.retryInMs / 100) / 10} s` : ''}…`,
    disconnected: 'Disconnected',
  }[s.status];
  const sendCombo = () => con.current?.sendKeys(SEND_KEY_COMBOS.find((c) => c.label === combo.value)!.codes);
  const typeText = async (e: Event) => {
    e.preventDefault();
    const c = con.current;
    if (!c || !text.value) return;
    typing.value = true;
    try {
      await c.typeText(text.value);
      text.value = '';
    } finally {
      typing.value = false;
      c.focus();
    }
  };
  return html`
    <div class=${`console-view${full ? ' full' : ''}`}>
      <div class="console-toolbar">
        <span id="console-status" class=${`console-status st-${running ? s.status : 'off'}`} data-status=${running ? s.status : 'vm-off'}
          title=${s.message ?? ''}>${label}</span>
        ${s.message && s.status !== 'connected' && html`<span class="muted console-message" id="console-message">${s.message}</span>`}
        <span class="muted">${size.value}${size.value && ` · mouse: ${mouse.value === 'client' ? 'absolute' : 'relative (click to capture, Esc releases)'}`}</span>
        <span class="spacer"></span>
        <label class="inline">Scale
          <select id="console-scale" value=${scale.value} onChange=${(e: Event) => {
            scale.value = (e.target as HTMLSelectElement).value as ScaleMode;
            if (con.current) con.current.scaleMode = scale.value;
          }}>
            <option value="fit">Fit to window</option>
            <option value="none">1:1</option>
          </select>
        </label>
        <label class="inline">Send key
          <select id="console-sendkey" value=${combo.value} onChange=${(e: Event) => (combo.value = (e.target as HTMLSelectElement).value)}>
            ${SEND_KEY_COMBOS.map((c) => html`<option value=${c.label}>${c.label}</option>`)}
          </select>
          <button id="console-sendkey-button" onClick=${sendCombo} disabled=${s.status !== 'connected'}>Send</button>
        </label>
        <button id="console-fullscreen" onClick=${() => con.current?.toggleFullscreen()}>Fullscreen</button>
        ${!full && html`<a id="console-open" href=${`/vms/${encodeURIComponent(vm.name)}/console`} target="_blank">Open in new window</a>`}
      </div>
      <div class="console-host" ref=${host} onClick=${() => con.current?.focus()}></div>
      <form class="console-type" onSubmit=${typeText}>
        <textarea id="console-text" rows="1" placeholder="Text to type into the guest as keystrokes (US layout; Enter = new line)"
          value=${text.value} onInput=${(e: Event) => (text.value = (e.target as HTMLTextAreaElement).value)}></textarea>
        <button id="console-type" disabled=${typing.value || s.status !== 'connected'}>${typing.value ? 'Typing…' : 'Type'}</button>
      </form>
    </div>`;
}
