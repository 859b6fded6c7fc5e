// The OpenCL remoting helper of one VM, a process of its own (index.ts starts it): it connects to the unix socket
// QEMU serves for the VM's virtio-serial port and answers the guest ICD's requests with the host's OpenCL.
// PoCL compiles and runs kernels inside this process, so a kernel that misbehaves takes only this helper down.
// Usage: node helper-main.js <socket>
import { connect, type Socket } from 'node:net';
import { DecodeError, FrameSplitter } from './protocol.ts';
import { Session } from './session.ts';

const socketPath = process.argv[2];
if (!socketPath) {
  console.error('usage: helper-main <socket>');
  process.exit(2);
}
/** QEMU gone for this long (its socket refuses): the VM stopped, the helper ends. */
const GIVE_UP_MS = 10_000;

const session = new Session();
let lastConnected = Date.now();

function log(msg: string): void {
  console.error(`${new Date().toISOString()} opencl-helper: ${msg}`);
}

function attach(): void {
  const sock: Socket = connect(socketPath!);
  const split = new FrameSplitter();
  sock.on('connect', () => {
    lastConnected = Date.now();
    log(`connected (session ${session.handles.session.toString(16)})`);
  });
  sock.on('data', (chunk) => {
    let bodies: Buffer[];
    try {
      bodies = split.push(chunk);
    } catch (e) {
      // A frame length that cannot be right: the stream is out of step; start over on a new connection.
      log(`dropping the link: ${(e as DecodeError).message}`);
      sock.destroy();
      return;
    }
    for (const body of bodies) sock.write(session.handle(body));
  });
  sock.on('error', () => undefined);
  sock.on('close', () => {
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
