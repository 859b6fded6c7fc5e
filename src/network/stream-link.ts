// One connection speaking QEMU's stream netdev framing (net/stream.c): each frame is a 4-byte big-endian length
// followed by the Ethernet frame (no FCS, no vnet header). QEMU listens (`-netdev stream,server=on`) and the switch
// dials: QEMU takes a new peer after a disconnect, so a restarted server simply dials again.
import { connect, type Socket } from 'node:net';
import { MAX_FRAME } from './frames.ts';

/** Frames waiting in a slow peer's socket beyond this many bytes are dropped (counted), not queued. */
const MAX_QUEUED_BYTES = 2 * 1024 * 1024;

export interface LinkEvents {
  frame(f: Buffer): void;
  /** A length QEMU would never send (0, or > MAX_FRAME): the stream cannot be trusted any more and is closed. */
  malformed(why: string): void;
  closed(): void;
}

export class StreamLink {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private closed = false;

  constructor(private readonly sock: Socket, private readonly on: LinkEvents) {
    sock.setNoDelay?.(true);
    sock.on('data', (d: Buffer) => this.read(d));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      this.closed = true;
      on.closed();
    });
  }

  /** Dials a unix socket once. */
  static dial(path: string, on: LinkEvents): Promise<StreamLink> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      const fail = (e: Error) => reject(e);
      s.once('error', fail);
      s.once('connect', () => {
        s.off('error', fail);
        resolve(new StreamLink(s, on));
      });
    });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Queues a frame; false if it was dropped because the peer is not reading. */
  send(f: Buffer): boolean {
    if (this.closed || this.sock.writableLength > MAX_QUEUED_BYTES) return false;
    const h = Buffer.alloc(4);
    h.writeUInt32BE(f.length);
    this.sock.write(Buffer.concat([h, f]));
    return true;
  }

  close(): void {
    this.sock.destroy();
  }

  private read(d: Buffer): void {
    this.pending.push(d);
    this.pendingBytes += d.length;
    while (this.pendingBytes >= 4 && !this.closed) {
      const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
      this.pending = [buf];
      const len = buf.readUInt32BE(0);
      if (len === 0 || len > MAX_FRAME) {
        this.on.malformed(`frame length ${len}`);
        this.close();
        return;
      }
      if (buf.length < 4 + len) return;
      const frame = Buffer.from(buf.subarray(4, 4 + len)); // own copy: the rest of buf is released
      const rest = buf.subarray(4 + len);
      this.pending = rest.length ? [rest] : [];
      this.pendingBytes = rest.length;
      this.on.frame(frame);
    }
  }
}
