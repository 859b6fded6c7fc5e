// The guest's serial console (ttyS0) in xterm.js over /api/vms/{vm}/serial: raw bytes both ways. Several viewers
// share the line; reconnects while the VM runs.
import { useSignal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import type { Vm } from '../lib/api.ts';
import { html } from '../lib/html.ts';
import { wsUrl } from '../../spice-web/transport.ts';

export function SerialTerminal({ vm }: { vm: Vm }) {
  const host = useRef<HTMLDivElement>(null);
  const status = useSignal('idle');
  const running = ['running', 'paused'].includes(vm.state);

  useEffect(() => {
    if (!running) {
      status.value = `the VM is ${vm.state}`;
      return;
    }
    const term = new Terminal({
      convertEol: false,
      cursorBlink: true,
      fontSize: 14,
      scrollback: 5000,
      theme: { background: '#111418' },
    });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(host.current!);
    const ro = new ResizeObserver(() => { try { fit.fit(); } catch { /* hidden */ } });
    ro.observe(host.current!);
    const encoder = new TextEncoder();
    let ws: WebSocket | undefined;
    let stopped = false;
    let attempt = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const open = () => {
      status.value = attempt ? 'reconnecting' : 'connecting';
      const sock = new WebSocket(wsUrl(`/api/vms/${encodeURIComponent(vm.name)}/serial`));
      ws = sock;
      sock.binaryType = 'arraybuffer';
      sock.onopen = () => {
        attempt = 0;
        status.value = 'connected';
      };
      sock.onmessage = (ev: MessageEvent<ArrayBuffer>) => term.write(new Uint8Array(ev.data));
      sock.onclose = (ev) => {
        if (stopped || ws !== sock) return;
        status.value = ev.reason ? `disconnected: ${ev.reason}` : 'disconnected';
        timer = setTimeout(open, Math.min(8000, 500 * 2 ** attempt++));
      };
    };
    const d1 = term.onData((d) => ws?.readyState === WebSocket.OPEN && ws.send(encoder.encode(d)));
    const d2 = term.onBinary(
      (d) => ws?.readyState === WebSocket.OPEN && ws.send(Uint8Array.from(d, (c) => c.charCodeAt(0))),
    );
    open();
    return () => {
      stopped = true;
      clearTimeout(timer);
      ws?.close();
      d1.dispose();
      d2.dispose();
      ro.disconnect();
      term.dispose();
    };
  }, [vm.name, running]);

  return html`
    <div class="serial">
      <div class="console-toolbar"><span id="serial-status" data-status=${status.value}>${status.value}</span>
        <span class="muted">ttyS0 · shared with every viewer of this VM</span></div>
      <div class="serial-host" id="serial-terminal" ref=${host}></div>
    </div>`;
}
