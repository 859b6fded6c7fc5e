// The server's side of one OpenCL helper's control channel (control.ts): it reads what the helper says as untrusted
// input (a bounded frame reader, exact messages, each only when due), dials QEMU's port for it (one dial at a time,
// paced) and passes the connection on the descriptor channel, and carries holds by id. Any message the helper should
// not send ends the channel: `onViolation` is told why, once, and the caller kills the helper.
import { connect, Socket } from 'node:net';
import { ControlError, ControlReader, encodeControl, fromHelper, type FromHelper, type ToHelper } from './control.ts';
import { closeFd, sendFd, shutRead, socketPair } from './unix.ts';

/** Dials are paced: at most one per this many ms (a helper whose QEMU is not there yet asks every 200 ms). */
export const DIAL_SPACING_MS = 100;
/** Bytes the server lets queue toward a helper that does not read its channel before it gives up on it. */
const MAX_UNREAD = 64 << 10;

export interface ChannelEnds {
  /** The helper's ends, for its fds 4 and 5 (the spawner dups them; close them after the spawn). */
  child: [number, number];
  /** Closes the helper's ends in the server. */
  closeChild(): void;
}

/** What the helper said, or that the channel is gone (the helper ended, or broke the rules). */
export type ChannelEvent = FromHelper | { t: 'closed' };

export class HelperChannel {
  private readonly ctl: Socket;
  private readonly descriptors: number;
  private readonly reader = new ControlReader();
  private dialing = false;
  private lastDial = 0;
  private closed = false;
  private holdSeq = 0;
  /** Holds sent and not yet released: whether each was answered `held`, `unheld`. */
  private readonly holds = new Map<number, { held: boolean; unheld: boolean }>();
  private readonly listeners = new Set<(m: ChannelEvent) => void>();
  readonly ends: ChannelEnds;

  constructor(
    private readonly socket: string,
    private readonly onViolation: (why: string) => void,
  ) {
    const [ctlServer, ctlChild] = socketPair();
    const [fdServer, fdChild] = socketPair();
    // The descriptor channel only carries descriptors to the helper: it cannot write back.
    shutRead(fdServer);
    this.descriptors = fdServer;
    let childOpen = true;
    this.ends = {
      child: [ctlChild, fdChild],
      closeChild: () => {
        if (!childOpen) return;
        childOpen = false;
        closeFd(ctlChild);
        closeFd(fdChild);
      },
    };
    // Read with read(2) (a plain stream, not Node's IPC): descriptors the helper attaches are dropped by the kernel.
    this.ctl = new Socket({ fd: ctlServer, readable: true, writable: true });
    this.ctl.on('data', (chunk: Buffer) => this.onData(chunk));
    this.ctl.on('error', () => this.close());
    this.ctl.on('close', () => this.close());
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let values: unknown[];
    try {
      values = this.reader.push(chunk);
    } catch (e) {
      return this.violation(e instanceof ControlError ? e.message : 'unreadable control bytes');
    }
    for (const v of values) {
      const m = fromHelper(v);
      if (!m) return this.violation(`a message the helper may not send: ${JSON.stringify(v).slice(0, 80)}`);
      if (m.t === 'dial') {
        if (this.dialing) return this.violation('a second dial while one is under way');
        this.dialing = true;
        const wait = Math.max(0, this.lastDial + DIAL_SPACING_MS - Date.now());
        setTimeout(() => this.dial(), wait).unref();
      } else {
        const h = this.holds.get(m.id);
        if (m.id > this.holdSeq || h?.[m.t]) return this.violation(`${m.t} ${m.id} was not due`);
        if (h) h[m.t] = true;
      }
      for (const l of [...this.listeners]) l(m);
      if (this.closed) return;
    }
  }

  private violation(why: string): void {
    if (this.closed) return;
    this.close();
    this.onViolation(why);
  }

  private send(m: ToHelper): void {
    if (this.closed) return;
    if (this.ctl.writableLength > MAX_UNREAD) return this.violation('the helper does not read its control channel');
    this.ctl.write(encodeControl(m));
  }

  /** Connects to QEMU's port socket for the helper and passes the connection on (or says why not). */
  private dial(): void {
    if (this.closed) return;
    this.lastDial = Date.now();
    const sock = connect(this.socket);
    sock.pause(); // nothing is read here: every byte is the helper's
    const done = (m: ToHelper) => {
      sock.destroy();
      this.dialing = false;
      this.send(m);
    };
    sock.once('connect', () => {
      const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (this.closed) return sock.destroy();
      if (fd === undefined || fd < 0 || !sendFd(this.descriptors, fd)) return done({ t: 'nolink', error: 'EPIPE' });
      done({ t: 'link' });
    });
    sock.once('error', (e: NodeJS.ErrnoException) => done({ t: 'nolink', error: e.code ?? 'error' }));
  }

  /** Sends a new hold; its id comes back with the helper's `held` (and `unheld` if it lifts itself). */
  hold(maxMs: number): number {
    const id = ++this.holdSeq;
    this.holds.set(id, { held: false, unheld: false });
    this.send({ t: 'hold', id, maxMs });
    return id;
  }

  release(id: number): void {
    if (!this.holds.delete(id)) return;
    this.send({ t: 'release', id });
  }

  /** `l` hears what the helper says, and the channel's end, until the returned function is called. */
  listen(l: (m: ChannelEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  get open(): boolean {
    return !this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ctl.destroy();
    closeFd(this.descriptors);
    this.ends.closeChild();
    for (const l of [...this.listeners]) l({ t: 'closed' });
    this.listeners.clear();
  }
}
