// The OpenCL remoting helper of one VM, a process of its own (index.ts starts it, sandboxed: sandbox.ts): it answers
// the guest ICD's requests, which come on the VM's virtio-serial port, with the host's OpenCL. It opens nothing of
// its VM by path: the window comes as a descriptor (fd 3), and each connection to QEMU's port socket is dialled by
// the server on request and passed on the descriptor channel (fd 5); the control channel (fd 4, control.ts) carries
// those requests and holds (index.ts: hold). PoCL compiles and runs kernels inside this process, so a kernel that
// misbehaves takes only this helper down.
// Usage (by the server, fds 4 and 5 open): node helper-main.js [<window fd>]
import { closeSync, fstatSync, readdirSync } from 'node:fs';
import { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { CONTROL_FD, ControlReader, DESCRIPTOR_FD, encodeControl, toHelper, type FromHelper } from './control.ts';
import { DecodeError, FrameSplitter, encodeNotice } from './protocol.ts';
import { Session } from './session.ts';
import { recvFd } from './unix.ts';
import { Window } from './window.ts';

try {
  fstatSync(CONTROL_FD);
  fstatSync(DESCRIPTOR_FD);
} catch {
  console.error(`usage: helper-main [<window fd>], started by the server with fds ${CONTROL_FD} and ${DESCRIPTOR_FD} open`);
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
const control = new Socket({ fd: CONTROL_FD, readable: true, writable: true });
const tell = (m: FromHelper) => control.write(encodeControl(m));
/** One dial at a time (the server ends a helper that asks twice). */
let dialing = false;
const dial = (afterMs = 0) => {
  if (dialing) return;
  dialing = true;
  setTimeout(() => tell({ t: 'dial' }), afterMs);
};

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
session.onProcessEnd = (n) => log(`the guest process before this one left ${n} objects: released`);
let lastConnected = Date.now();

// What this process can reach (the sandbox's work, sandbox.ts), for the log and the tests.
log(`sees / = ${readdirSync('/').sort().join(',')}; network: ${Object.keys(networkInterfaces()).join(',') || 'none'}; `
  + `uid ${process.getuid?.()}`);

// ---- holds: while one is on, requests wait in `queue` (in order) and nothing runs on the device ----
/** Holds on, by id: each lifts itself after its maxMs (its timer). */
const holds = new Map<number, NodeJS.Timeout>();
const queue: { sock: Socket; body: Buffer }[] = [];

function drain(): void {
  while (holds.size === 0 && queue.length) {
    const { sock, body } = queue.shift()!;
    if (!sock.destroyed) sock.write(session.handle(body));
  }
}

function hold(id: number, maxMs: number): void {
  if (holds.has(id)) return;
  holds.set(id, setTimeout(() => {
    holds.delete(id);
    log(`hold ${id} outlived ${maxMs} ms: released (${queue.length} requests were waiting)`);
    tell({ t: 'unheld', id });
    drain();
  }, maxMs));
  const failed = session.finishAll();
  log(`holding requests (hold ${id}${failed ? `; clFinish failed on ${failed} queue(s)` : ''})`);
  tell({ t: 'held', id });
}

function release(id: number): void {
  const timer = holds.get(id);
  if (!timer) return;
  clearTimeout(timer);
  holds.delete(id);
  if (holds.size) return;
  log(`released: ${queue.length} requests waited`);
  drain();
}

/** When a link's notice is sent again after the first (ms after the link came up). */
const NOTICE_AGAIN_MS = [1_000, 3_000, 8_000];

// ---- the link to QEMU's port ----
function serve(sock: Socket): void {
  const split = new FrameSplitter();
  let stall: NodeJS.Timeout | undefined;
  const drop = (why: string) => {
    log(`dropping the link: ${why}`);
    sock.destroy();
  };
  lastConnected = Date.now();
  session.link++;
  log(`connected (session ${session.handles.session.toString(16)}, link ${session.link}, `
    + `window ${win ? `${win.size >> 20n} MiB` : 'none'})`);
  // First on every link: which helper and link this is. A guest restored from a checkpoint mid-call learns from it
  // that its call's answer is not coming (this helper never saw the request), and fails the call (protocol.ts).
  // Said again a few times: a guest that restored into a wait may read the port only later, and a notice of the
  // helper it already knows is ignored (the guest library compares helper and link).
  const link = session.link;
  sock.write(encodeNotice(session.helper, link));
  for (const ms of NOTICE_AGAIN_MS) {
    setTimeout(() => { if (!sock.destroyed) sock.write(encodeNotice(session.helper, link)); }, ms).unref();
  }
  sock.on('data', (chunk) => {
    let bodies: Buffer[];
    try {
      bodies = split.push(chunk);
    } catch (e) {
      // A frame length that cannot be right: the stream is out of step; start over on a new connection.
      drop((e as DecodeError).message);
      return;
    }
    for (const body of bodies) {
      // A request's reserved field is 0: anything else is a stream out of step (the tail of a frame whose head went
      // to the helper of before a restore); start over on a new link rather than answer garbage.
      if (body.length >= 8 && body.readUInt16LE(6) !== 0) {
        drop('a frame out of step (reserved field set)');
        return;
      }
      queue.push({ sock, body });
    }
    drain();
    clearTimeout(stall);
    if (split.partial) stall = setTimeout(() => drop(`a frame left half-sent (${split.partial} bytes)`), PARTIAL_FRAME_MS);
  });
  sock.on('error', () => undefined);
  sock.on('close', () => {
    clearTimeout(stall);
    // A link that was up counts as QEMU seen now (a link the helper dropped itself is dialled again at once).
    lastConnected = Date.now();
    dial(200);
  });
  sock.resume();
}

function onControl(v: unknown): void {
  const m = toHelper(v);
  switch (m?.t) {
    case 'link': {
      dialing = false;
      const fd = recvFd(DESCRIPTOR_FD);
      if (fd === undefined) dial(200);
      else serve(new Socket({ fd, readable: true, writable: true }));
      break;
    }
    case 'nolink':
      dialing = false;
      if (Date.now() - lastConnected > GIVE_UP_MS) {
        log(`QEMU is gone (${m.error}): exiting`);
        session.close();
        process.exit(0);
      }
      dial(200);
      break;
    case 'hold':
      hold(m.id, m.maxMs);
      break;
    case 'release':
      release(m.id);
      break;
  }
}

const reader = new ControlReader();
control.on('data', (chunk: Buffer) => {
  try {
    for (const v of reader.push(chunk)) onControl(v);
  } catch (e) {
    log(`bad control bytes: ${(e as Error).message}`);
    process.exit(1);
  }
});
control.on('error', () => undefined);

// The server holds the control channel: when it goes (server stopped or crashed), so does the helper (and any hold).
control.on('close', () => {
  session.close();
  process.exit(0);
});
process.on('SIGTERM', () => {
  session.close();
  process.exit(0);
});
dial();
