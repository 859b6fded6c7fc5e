// The OpenCL remoting helper of one VM, a process of its own (index.ts starts it): it connects to the unix socket
// QEMU serves for the VM's virtio-serial port and answers the guest ICD's requests with the host's OpenCL.
// PoCL compiles and runs kernels inside this process, so a kernel that misbehaves takes only this helper down.
// Usage: node helper-main.js <socket> [<window file>]
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { DecodeError, FrameSplitter } from './protocol.ts';
import { Session } from './session.ts';
import { Window } from './window.ts';

const socketPath = process.argv[2];
if (!socketPath) {
  console.error('usage: helper-main <socket> [<window file>]');
  process.exit(2);
}
/** QEMU gone for this long (its socket refuses): the VM stopped, the helper ends. */
const GIVE_UP_MS = 10_000;
/** A frame left half-sent this long (the ICD writes each whole at once): its sender is gone or hostile; the link is
 * dropped so that the next guest process starts on a frame boundary. */
const PARTIAL_FRAME_MS = 2_000;

let win: Window | undefined;
if (process.argv[3]) {
  try {
    win = Window.open(process.argv[3]);
  } catch (e) {
    // The copy path still works: the guest ICD asks (Op.WINDOW) and falls back when there is none.
    console.error(`${new Date().toISOString()} opencl-helper: no zero-copy window: ${(e as Error).message}`);
  }
}
const session = new Session(undefined, win);
let lastConnected = Date.now();

function log(msg: string): void {
  console.error(`${new Date().toISOString()} opencl-helper[${process.pid}]: ${msg}`);
}

// What this process can reach (the sandbox's work, sandbox.ts), for the log and the tests.
log(`sees / = ${readdirSync('/').sort().join(',')}; network: ${Object.keys(networkInterfaces()).join(',') || 'none'}`);

function attach(): void {
  const sock: Socket = connect(socketPath!);
  const split = new FrameSplitter();
  let stall: NodeJS.Timeout | undefined;
  const drop = (why: string) => {
    log(`dropping the link: ${why}`);
    sock.destroy();
  };
  let up = false;
  sock.on('connect', () => {
    up = true;
    lastConnected = Date.now();
    log(`connected (session ${session.handles.session.toString(16)}, window ${win ? `${win.size >> 20n} MiB` : 'none'})`);
  });
  sock.on('data', (chunk) => {
    let bodies: Buffer[];
    try {
      bodies = split.push(chunk);
    } catch (e) {
      // A frame length that cannot be right: the stream is out of step; start over on a new connection.
      drop((e as DecodeError).message);
      return;
    }
    for (const body of bodies) sock.write(session.handle(body));
    clearTimeout(stall);
    if (split.partial) stall = setTimeout(() => drop(`a frame left half-sent (${split.partial} bytes)`), PARTIAL_FRAME_MS);
  });
  sock.on('error', () => undefined);
  sock.on('close', () => {
    clearTimeout(stall);
    // A link that was up counts as QEMU seen now (a link the helper dropped itself is dialled again at once).
    if (up) lastConnected = Date.now();
    if (Date.now() - lastConnected > GIVE_UP_MS) {
      log('QEMU is gone: exiting');
      session.close();
      process.exit(0);
    }
    setTimeout(attach, 200);
  });
}

// The server holds an IPC channel to each helper: when it goes (server stopped or crashed), so does the helper.
process.on('disconnect', () => {
  session.close();
  process.exit(0);
});
process.on('SIGTERM', () => {
  session.close();
  process.exit(0);
});
attach();
