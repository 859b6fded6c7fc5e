// One SPICE channel connection from the console proxy to the VM's SPICE server: dials QEMU (loopback TCP with the
// per-boot password, or the unix socket of a VM started by an older server), sends the client's link message,
// answers the ticket step itself (link-auth.ts), follows a main channel's MAIN_INIT for the session id
// (link-sniff.ts), and hands QEMU's bytes to the client's sink.
import { connect, type Socket } from 'node:net';
import type { ServerContext } from '../context.ts';
import type { VmRecord } from '../../vm/records.ts';
import { readSpiceEndpoint } from '../../vm/spice-endpoint.ts';
import { clientAuthSelection, LinkTicketSwap } from './link-auth.ts';
import type { ClientLink, SessionIdSniffer } from './link-sniff.ts';
import type { connectionTrace } from './trace.ts';

export type LinkEnd = (code: number, reason: string) => void;

export class QemuLink {
  readonly sock: Socket;
  private readonly swap: LinkTicketSwap | undefined;
  private ended = false;
  private chunks = 0;
  /**
   * `first`: the client's link message (`link.length` bytes) and whatever it sent after it; `sink` gets QEMU's bytes,
   * `onEnd` the link's end (once).
   */
  constructor(
    ctx: ServerContext,
    vm: VmRecord,
    first: Buffer,
    link: ClientLink,
    private readonly sniffer: SessionIdSniffer | undefined,
    private readonly trace: ReturnType<typeof connectionTrace>,
    log: { warn: (o: object, m: string) => void },
    private readonly sink: (buf: Buffer) => void,
    private readonly onEnd: LinkEnd,
  ) {
    const channel = link.channelType;
    const paths = ctx.vms.paths(vm);
    const ep = readSpiceEndpoint(paths);
    const sock = ep ? connect({ host: '127.0.0.1', port: ep.port, noDelay: true }) : connect(paths.spice);
    this.sock = sock;
    if (ep) {
      const onErr = (e: Error) => this.end(1008, `SPICE link: ${e.message}`);
      this.swap = new LinkTicketSwap(ep.password, clientAuthSelection(first), (b) => sock.write(b), onErr);
    }
    sock.on('connect', () => {
      trace('qemu-connected', { channel });
      sock.write(first.subarray(0, link.length));
      const rest = first.subarray(link.length);
      if (rest.length) this.write(rest);
    });
    sock.on('data', (buf: Buffer) => {
      if (this.chunks++ < 64) trace('from-qemu', { channel, bytes: buf.length });
      if (this.swap && !this.swap.done) {
        try {
          this.swap.fromServer(buf);
        } catch (e) {
          return this.end(1011, `SPICE link: ${(e as Error).message}`);
        }
      }
      if (this.sniffer && !this.sniffer.finished) this.sniffer.feed(buf);
      this.sink(buf);
    });
    sock.on('error', (e) => {
      log.warn({ vm: vm.name, err: e.message }, 'console: SPICE socket error');
      this.end(1011, 'the VM console is not reachable');
    });
    sock.on('close', () => this.end(1000, 'the VM closed the console'));
  }

  /** The client's bytes after its link message; false when the socket is full (wait for 'drain'). */
  write(chunk: Buffer): boolean {
    if (this.swap && !this.swap.done) {
      this.swap.fromClient(chunk);
      return true;
    }
    return this.sock.write(chunk);
  }

  /** True once the link ended (QEMU closed it, an error, or `end`). */
  get isEnded(): boolean {
    return this.ended;
  }

  end(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.sock.destroy();
    this.onEnd(code, reason);
  }
}
