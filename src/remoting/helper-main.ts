// The OpenCL remoting helper of one VM, a process of its own (index.ts starts it, sandboxed: sandbox.ts): it answers
// the guest ICD's requests, which come on the VM's virtio-serial port, with the host's OpenCL. It opens nothing of
// its VM by path: the window comes as a descriptor, and each connection to QEMU's port socket is dialled by the
// server on request and handed over on the IPC channel (control.ts), which also carries holds (index.ts: hold).
// PoCL compiles and runs kernels inside this process, so a kernel that misbehaves takes only this helper down.
// Usage (by the server, with an IPC channel): node helper-main.js [<window fd>]
import { closeSync, readdirSync } from 'node:fs';
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { FromHelper, ToHelper } from './control.ts';
import { DecodeError, FrameSplitter } from './protocol.ts';
import { Session } from './session.ts';
import { Window } from './window.ts';

if (!process.send) {
  console.error('usage: helper-main [<window fd>], started by the server with an IPC channel');
  process.exit(2);
}
/** QEMU gone for this long (its socket refuses): the VM stopped, the helper ends. */
const GIVE_UP_MS = 10_000;
/** A frame left half-sent this long (the ICD writes each whole at once): its sender is gone or hostile; the link is
 * dropped so that the next guest process starts on a frame boundary. */
const PARTIAL_FRAME_MS = 2_000;

function log(msg: string): void {
  console.error(`${new Date().toISOString()} opencl-helper[${process.pid}]: ${msg}`);
}
const tell = (m: FromHelper) => process.send!(m);

let win: Window | undefined;
if (process.argv[2]) {
  const fd = Number(process.argv[2]);
  try {
    win = Window.map(fd);
  } catch (e) {
    // The copy path still works: the guest ICD asks (Op.WINDOW) and falls back when there is none.
    log(`no zero-copy window: ${(e as Error).message}`);
  } finally {
    try { closeSync(fd); } catch { /* not open */ }
  }
}
const session = new Session(undefined, win);
let lastConnected = Date.now();

// What this process can reach (the sandbox's work, sandbox.ts), for the log and the tests.
log(`sees / = ${readdirSync('/').sort().join(',')}; network: ${Object.keys(networkInterfaces()).join(',') || 'none'}; `
  + `uid ${process.getuid?.()}`);

// ---- holds: while one is on, requests wait in `queue` (in order) and nothing runs on the device ----
let holds = 0;
let holdTimer: NodeJS.Timeout | undefined;
const queue: { sock: Socket; body: Buffer }[] = [];

function drain(): void {
  while (holds === 0 && queue.length) {
    const { sock, body } = queue.shift()!;
    if (!sock.destroyed) sock.write(session.handle(body));
  }
}

function hold(maxMs: number): void {
  holds++;
  clearTimeout(holdTimer);
  holdTimer = setTimeout(() => {
    log(`a hold outlived ${maxMs} ms: released (${queue.length} requests were waiting)`);
    holds = 0;
    drain();
  }, maxMs);
  session.finishAll();
  log(`holding requests (hold ${holds})`);
  tell({ t: 'held' });
}

function release(): void {
  if (holds === 0) return;
  if (--holds > 0) return;
  clearTimeout(holdTimer);
  log(`released: ${queue.length} requests waited`);
  drain();
}

// ---- the link to QEMU's port ----
function serve(sock: Socket): void {
  const split = new FrameSplitter();
  let stall: NodeJS.Timeout | undefined;
  const drop = (why: string) => {
    log(`dropping the link: ${why}`);
    sock.destroy();
  };
  lastConnected = Date.now();
  log(`connected (session ${session.handles.session.toString(16)}, window ${win ? `${win.size >> 20n} MiB` : 'none'})`);
  sock.on('data', (chunk) => {
    let bodies: Buffer[];
    try {
      bodies = split.push(chunk);
    } catch (e) {
      // A frame length that cannot be right: the stream is out of step; start over on a new connection.
      drop((e as DecodeError).message);
      return;
    }
    for (const body of bodies) queue.push({ sock, body });
    drain();
    clearTimeout(stall);
    if (split.partial) stall = setTimeout(() => drop(`a frame left half-sent (${split.partial} bytes)`), PARTIAL_FRAME_MS);
  });
  sock.on('error', () => undefined);
  sock.on('close', () => {
    clearTimeout(stall);
    // A link that was up counts as QEMU seen now (a link the helper dropped itself is dialled again at once).
    lastConnected = Date.now();
    setTimeout(() => tell({ t: 'dial' }), 200);
  });
  sock.resume();
}

process.on('message', (m: ToHelper, handle?: unknown) => {
  switch (m?.t) {
    case 'link':
      if (handle) serve(handle as Socket);
      else setTimeout(() => tell({ t: 'dial' }), 200);
      break;
    case 'nolink':
      if (Date.now() - lastConnected > GIVE_UP_MS) {
        log(`QEMU is gone (${m.error}): exiting`);
        session.close();
        process.exit(0);
      }
      setTimeout(() => tell({ t: 'dial' }), 200);
      break;
    case 'hold':
      hold(Number.isFinite(m.maxMs) && m.maxMs > 0 ? m.maxMs : 60_000);
      break;
    case 'release':
      release();
      break;
  }
});

// The server holds the IPC channel: when it goes (server stopped or crashed), so does the helper (and any hold).
process.on('disconnect', () => {
  session.close();
  process.exit(0);
});
process.on('SIGTERM', () => {
  session.close();
  process.exit(0);
});
tell({ t: 'dial' });
