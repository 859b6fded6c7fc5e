// The SPICE console in the page: the framework-free SpiceConsole (console/spice-console.ts) plus its toolbar:
// status, scaling (fit, 1:1, or the guest resized to the window through its agent), fullscreen, send-key menu,
// "type text", the shared clipboard (with its panel) and files sent to the guest (drop them on the console, or pick
// them). It connects while the VM runs and comes back by itself after a reconnect, a reboot, or the VM being started
// again. The scale choice is remembered in localStorage.
import { useSignal } from '@preact/signals';
import { useEffect, useLayoutEffect, useRef } from 'preact/hooks';
import { SEND_KEY_COMBOS, type AgentState } from '../../spice/index.ts';
import type { Vm } from '../lib/api.ts';
import { html } from '../lib/html.ts';
import { notify } from '../lib/state.ts';
import { AudioButtons } from './audio-buttons.ts';
import { UsbButtons } from './usb-buttons.ts';
import { attachDropTarget } from '../../spice-web/file-drop.ts';
import { spicePath } from '../../spice-web/preconnect.ts';
import { CONSOLE_TAKEN_OVER } from '../../api/console-close.ts';
import { SpiceConsole, type ConsoleStatusEvent, type ScaleMode } from '../../spice-web/spice-console.ts';
import '../../spice-web/console.css';
import { ClipboardPanel, TransfersPanel, clipboardMode, clipboardStatus } from './console-panels.ts';
import { shareFolderButton } from './console-share.ts';

const SCALE_KEY = 'oriel.console.scale';

function savedScale(): ScaleMode {
  try {
    const v = localStorage.getItem(SCALE_KEY);
    return v === 'none' || v === 'remote' || v === 'fit' ? v : 'fit';
  } catch {
    return 'fit'; // storage blocked
  }
}

function saveScale(m: ScaleMode): void {
  try { localStorage.setItem(SCALE_KEY, m); } catch { /* storage blocked: the choice lasts for this page */ }
}

const NO_AGENT_FILES =
  'The guest has no agent connected (spice-vdagent, in its desktop session): files cannot be sent to it.';

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
  const scale = useSignal<ScaleMode>(savedScale());
  const monitors = useSignal(1);
  const heads = useSignal(0);
  const text = useSignal('');
  const typing = useSignal(false);
  const combo = useSignal(SEND_KEY_COMBOS[0]!.label);
  const agent = useSignal<AgentState>('disconnected');
  const clipTick = useSignal(0);
  const clipOpen = useSignal(false);
  const xferTick = useSignal(0);
  const audioTick = useSignal(0);
  const usbTick = useSignal(0);
  const xferMessage = useSignal('');
  const fileInput = useRef<HTMLInputElement>(null);
  const folderInput = useRef<HTMLInputElement>(null);

  const sendFiles = (files: File[], folders = 0) => {
    const c = con.current;
    if (!c) return;
    if (c.agentState !== 'ready') {
      xferMessage.value = NO_AGENT_FILES;
      return;
    }
    xferMessage.value = folders ? `Folders cannot be sent (${folders} left out): drop the files inside them.` : '';
    if (files.length) c.files.add(files);
  };

  // Before the first paint (an effect would wait for it): the console's screen shows the server's picture at once.
  useLayoutEffect(() => {
    let lastGuest: unknown;
    let lastMessage: unknown;
    const c = new SpiceConsole({
      path: spicePath(vm.name),
      // Not after another console took the VM over: two pages would take it from each other for ever.
      canReconnect: (e) => live(vmRef.current) && (e as { code?: number } | undefined)?.code !== CONSOLE_TAKEN_OVER,
      onStatus: (e) => (status.value = e),
      onResize: (w, h) => (size.value = `${w}×${h}`),
      onMouseMode: (m) => (mouse.value = m),
      onAgentState: (st) => {
        agent.value = st;
        if (st === 'ready' && xferMessage.value === NO_AGENT_FILES) xferMessage.value = '';
      },
      onClipboardChange: () => {
        clipTick.value++;
        // The guest copied something this browser would not take: show it.
        const cb = con.current?.clipboard;
        if (cb?.needsPanel && cb.guest !== lastGuest) {
          lastGuest = cb.guest;
          clipOpen.value = true;
        }
        // Errors (size limits, refusals) are said even with the panel closed.
        if (cb?.message && cb.message !== lastMessage) {
          lastMessage = cb.message;
          if (cb.message.kind === 'error' && !clipOpen.value) notify(cb.message.text);
        }
      },
      onTransfersChange: () => xferTick.value++,
      onAudioChange: () => audioTick.value++,
      onUsbChange: () => usbTick.value++,
      onMonitors: (h) => {
        heads.value = h.length;
        // The choice shows the guest's count until the person picks one here (SpiceConsole.monitorCount).
        if (con.current) monitors.value = con.current.monitorCount;
      },
    });
    con.current = c;
    window.orielConsole = c;
    c.scaleMode = scale.value;
    const el = host.current!;
    el.append(c.element);
    // The drop overlay: framework-free like the console, over it while files are dragged in.
    const overlay = document.createElement('div');
    overlay.className = 'console-drop';
    overlay.id = 'console-drop-overlay';
    overlay.hidden = true;
    el.append(overlay);
    const detach = attachDropTarget(el, {
      onDragState: (over) => {
        const ready = c.agentState === 'ready';
        overlay.hidden = !over;
        overlay.dataset.agent = ready ? 'ready' : 'none';
        overlay.textContent = ready ? 'Drop to copy the files to the guest (its Downloads folder)' : NO_AGENT_FILES;
      },
      onFiles: (files, folders) => sendFiles(files, folders),
    });
    if (live(vmRef.current)) c.connect();
    return () => {
      detach();
      overlay.remove();
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
  const c0 = con.current;
  const cb = c0?.clipboard;
  // Read on every render: the panels below show state kept outside signals, and these ticks say it changed.
  const xfers = xferTick.value;
  const clips = clipTick.value;
  const sendCombo = () => con.current?.sendKeys(SEND_KEY_COMBOS.find((c) => c.label === combo.value)!.codes);
  const typeText = async (e: Event) => {
    e.preventDefault();
    const c = con.current;
    if (!c || !text.value) return;
    typing.value = true;
    try {
      // Text with a character a US keyboard has no key for is refused whole (nothing typed), as the CLI refuses it.
      await c.typeText(text.value);
      text.value = '';
    } catch (err) {
      notify((err as Error).message);
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
        <span class="muted" id="console-size">${size.value}${heads.value > 1 ? ` (${heads.value} monitors)` : ''}${size.value && ` · mouse: ${mouse.value === 'client' ? 'absolute' : 'relative (click to capture, Esc releases)'}`}</span>
        ${running && s.status === 'connected' && html`<span id="console-agent" class=${`muted agent-${agent.value}`} data-state=${agent.value}
          title=${agent.value === 'ready' ? 'The SPICE agent in the guest (spice-vdagent): shared clipboard, files, resize to window'
            : 'No SPICE agent (spice-vdagent) runs in the guest: the screen, keyboard, mouse, "Type" and the send-key menu work; '
              + 'the shared clipboard, sending files and resizing the guest need the agent'}>${
          agent.value === 'ready' ? '· agent ✓' : agent.value === 'connecting' ? '· agent…' : '· agent not running in the guest'}</span>`}
        <span class="spacer"></span>
        <label class="inline">Scale
          <select id="console-scale" value=${scale.value} onChange=${(e: Event) => {
            scale.value = (e.target as HTMLSelectElement).value as ScaleMode;
            saveScale(scale.value);
            if (con.current) con.current.scaleMode = scale.value;
          }}>
            <option value="fit">Fit to window</option>
            <option value="none">1:1</option>
            <option value="remote">Resize guest to window</option>
          </select>
        </label>
        ${
          scale.value === 'remote' &&
          running &&
          s.status === 'connected' &&
          agent.value !== 'ready' &&
          html`<span class="muted small" id="console-scale-hint"
          title="Resizing the guest needs its agent (spice-vdagent)">no agent: scaled to fit</span>`
        }
        <button id="console-clipboard-toggle" class=${`clip-toggle clip-${clipboardMode(cb)}`} data-mode=${clipboardMode(cb)} data-tick=${clips}
          aria-pressed=${clipOpen.value} onClick=${() => (clipOpen.value = !clipOpen.value)}
          title=${cb ? clipboardStatus(cb) : 'Clipboard'}>Clipboard</button>
        <button id="console-send-files" disabled=${agent.value !== 'ready'} onClick=${() => fileInput.current?.click()}
          title=${agent.value === 'ready' ? "Send files to the guest's Downloads folder (or drop them on the screen)" : NO_AGENT_FILES}>Send files…</button>
        <input type="file" multiple hidden id="console-file-input" ref=${fileInput} onChange=${(e: Event) => {
          const input = e.target as HTMLInputElement;
          sendFiles([...(input.files ?? [])]);
          input.value = '';
        }} />
        ${shareFolderButton(con.current, folderInput, s.status === 'connected')}
        <label class="inline">Send key
          <select id="console-sendkey" value=${combo.value} onChange=${(e: Event) => (combo.value = (e.target as HTMLSelectElement).value)}>
            ${SEND_KEY_COMBOS.map((c) => html`<option value=${c.label}>${c.label}</option>`)}
          </select>
          <button id="console-sendkey-button" onClick=${sendCombo} disabled=${s.status !== 'connected'}>Send</button>
        </label>
        <${AudioButtons} audio=${c0?.audio} tick=${audioTick.value} />
        <${UsbButtons} usb=${c0?.usb} tick=${usbTick.value} connected=${s.status === 'connected'} />
        <button id="console-fullscreen" onClick=${() => con.current?.toggleFullscreen()}>Fullscreen</button>
        ${!full && html`<a id="console-open" href=${`/vms/${encodeURIComponent(vm.name)}/console`} target="_blank">Open in new window</a>`}
      </div>
      ${
        clipOpen.value &&
        cb &&
        html`<${ClipboardPanel} cb=${cb} tick=${clips} onClose=${() => {
          clipOpen.value = false;
          con.current?.focus();
        }} />`
      }
      ${
        c0 &&
        (c0.files.transfers.length > 0 || xferMessage.value) &&
        html`<${TransfersPanel} files=${c0.files} tick=${xfers}
        message=${xferMessage.value} onDismissMessage=${() => (xferMessage.value = '')} />`
      }
      <div class="console-host" ref=${host} onClick=${() => con.current?.focus()}></div>
      <form class="console-type" onSubmit=${typeText}>
        <textarea id="console-text" rows="1" placeholder="Text to type into the guest as keystrokes (US layout; Enter = new line)"
          value=${text.value} onInput=${(e: Event) => (text.value = (e.target as HTMLTextAreaElement).value)}></textarea>
        <button id="console-type" disabled=${typing.value || s.status !== 'connected'}>${typing.value ? 'Typing…' : 'Type'}</button>
        <label class="inline" title="Monitors side by side (asked of the guest through its agent)">Monitors
          <select id="console-monitors" value=${monitors.value} disabled=${agent.value !== 'ready'} onChange=${(e: Event) => {
            monitors.value = Number((e.target as HTMLSelectElement).value);
            if (con.current) con.current.monitorCount = monitors.value;
          }}>
            <option value="1">1</option>
            <option value="2">2</option>
          </select>
        </label>
      </form>
    </div>`;
}
