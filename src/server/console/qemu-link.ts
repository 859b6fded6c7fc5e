// One SPICE channel connection from the console proxy to the VM's SPICE server: dials QEMU (loopback TCP with the
// per-boot password, or the unix socket of a VM started by an older server), sends the client's link message,
// answers the ticket step itself (link-auth.ts), follows a main channel's MAIN_INIT for the session id
// (link-sniff.ts), and hands QEMU's bytes to whoever is attached. Until someone is (a pre-dialled main channel,
// predial.ts, waiting for its page's WebSocket), QEMU's bytes are held, up to HOLD_LIMIT.
import { connect, type Socket } from 'node:net';
import type { ServerContext } from '../context.ts';
import type { VmRecord } from '../../vm/records.ts';
import { readSpiceEndpoint } from '../../vm/spice-endpoint.ts';
import { clientAuthSelection, LinkTicketSwap } from './link-auth.ts';
import type { ClientLink, SessionIdSniffer } from './link-sniff.ts';
import { ChannelType } from '../../spice/proto/constants.ts';
import type { connectionTrace } from './trace.ts';

/** QEMU bytes held for a connection nobody has attached yet (a main channel's start-up: ~260 KB with the ping). */
const HOLD_LIMIT = 2 << 20;

export type LinkEnd = (code: number, reason: string) => void;

export class QemuLink {
  readonly sock: Socket;
  private readonly swap: LinkTicketSwap | undefined;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private sink: ((buf: Buffer) => void) | undefined;
  private ended: [number, string] | undefined;
  private onEnd: LinkEnd | undefined;
  private chunks = 0;
  /** QEMU's bytes handed to the client so far. */
  private delivered = 0;
  /**
   * A main channel's bytes after QEMU's link reply wait for the client's ticket. The proxy sends its own ticket at
   * once, so MAIN INIT and spice-server's network-test pings come while a browser page may still be loading the
   * code that answers them: a page would hold them and answer all the pings at once, and spice-server, measuring
   * no transfer time, would take a slow link for a fast one (no JPEG). The client's ticket shows its code runs.
   */
  private readonly gated: boolean;
  private aged = false;

  /** `first`: the client's link message (`link.length` bytes) and whatever it sent after it. */
  constructor(
    ctx: ServerContext,
    vm: VmRecord,
    first: Buffer,
    link: ClientLink,
    private readonly sniffer: SessionIdSniffer | undefined,
    private readonly trace: ReturnType<typeof connectionTrace>,
    log: { warn: (o: object, m: string) => void },
  ) {
    const channel = link.channelType;
    const paths = ctx.vms.paths(vm);
    const ep = readSpiceEndpoint(paths);
    const sock = ep ? connect({ host: '127.0.0.1', port: ep.port, noDelay: true }) : connect(paths.spice);
    this.sock = sock;
    if (ep) {
      const onErr = (e: Error) => this.end(1008, `SPICE link: ${e.message}`);
      this.swap = new LinkTicketSwap(ep.password, clientAuthSelection(first), (b) => sock.write(b), onErr);
      this.swap.onClientTicket = () => this.pump();
    }
    this.gated = this.swap !== undefined && channel === ChannelType.MAIN;
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
      this.held.push(buf);
      this.heldBytes += buf.length;
      this.pump();
      if (this.heldBytes > HOLD_LIMIT) this.end(1011, 'the console was not taken up');
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

  /** Sends `bytes` for the client once the link is through; the client's own first bytes must equal them. */
  sendAhead(bytes: Buffer): void {
    if (this.swap) this.swap.sendAhead(bytes);
    else this.end(1011, 'no pre-dialled channels without the SPICE password'); // a VM of an older server
  }

  /** From now on QEMU's bytes go to `sink` (what was held first) and the link's end to `onEnd`. */
  attach(sink: (buf: Buffer) => void, onEnd: LinkEnd): void {
    this.onEnd = onEnd;
    this.sink = sink;
    this.pump();
    if (this.ended) onEnd(...this.ended);
  }

  /** Hands the client what it may have now: everything, or for a gated main channel the link reply alone. */
  private pump(): void {
    if (!this.sink) return;
    const open = !this.gated || this.swap!.clientTicketIn;
    if (open && !this.aged) this.ageMainInit();
    while (this.held.length) {
      const allow = open ? Infinity : (this.swap!.replyLength ?? 0) - this.delivered;
      if (allow <= 0) return;
      let buf = this.held[0]!;
      if (buf.length > allow) {
        this.held[0] = buf.subarray(allow);
        buf = buf.subarray(0, allow);
      } else {
        this.held.shift();
      }
      this.heldBytes -= buf.length;
      this.delivered += buf.length;
      this.sink(buf);
    }
  }

  /**
   * A main channel's MAIN_INIT held since it came carries spice-server's multimedia clock of that moment
   * (SpiceMsgMainInit.multi_media_time, the u32 at body offset 24): the client sets its clock by it when it reads
   * it, so it is moved on by the time it was held, or video frames and sound would wait that long.
   */
  private ageMainInit(): void {
    this.aged = true;
    const init = this.sniffer?.init;
    if (!init || this.held.length === 0) return;
    const at = init.at + 24 - this.delivered; // held[0] starts at stream offset `delivered`
    const all = Buffer.concat(this.held);
    if (at < 0 || all.length < at + 4) return;
    all.writeUInt32LE((all.readUInt32LE(at) + (Date.now() - init.receivedAt)) >>> 0, at);
    this.held = [all];
  }

  /** True once the link ended (QEMU closed it, an error, or `end`). */
  get isEnded(): boolean {
    return this.ended !== undefined;
  }

  end(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = [code, reason];
    this.sock.destroy();
    this.onEnd?.(code, reason);
  }
}
