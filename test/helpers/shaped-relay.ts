// A slow network link in user space (this machine's kernel has no netem): a TCP relay on 127.0.0.1 that delays
// each direction by half the round-trip time and paces it to a bit rate, like one bottleneck link shared by every
// connection through it (a SPICE client's channels, a browser's page load and WebSockets). Each direction keeps a
// bounded queue (about two bandwidth-delay products, at least 64 KiB): when it is full the sending socket is
// paused, so TCP back-pressure reaches the sender as it would on a real link. Counts the bytes each way.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface LinkShape {
  /** Bits per second, each direction. */
  bitsPerSecond: number;
  /** Round-trip time added, in milliseconds (half each way). */
  rttMs: number;
}

/** Slices larger than this are paced one by one, so a 64 KiB read does not leave as one burst. */
const SLICE = 4096;

/** One direction of the link: a FIFO with a serialisation clock and a propagation delay. Slices leave in the order
 * they came, from one queue and one timer: a timer per slice could let a later slice go first (Node's timers count
 * from the event loop's cached clock, which lags by however long the current tick has run), and a reordered slice
 * corrupts its connection's byte stream. */
class Pipe {
  private busyUntil = 0; // when the last queued byte has left the sender (ms, performance.now())
  queued = 0;
  bytes = 0;
  private readonly waiting = new Set<() => void>();
  private readonly fifo: { at: number; slice: Buffer; out: Socket }[] = [];
  private head = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    private readonly bytesPerMs: number,
    private readonly delayMs: number,
    readonly limit: number,
  ) {}

  /** Queues `chunk` for `out`; false if the queue is now over its limit (pause the source until `drained`). */
  send(chunk: Buffer, out: Socket): boolean {
    for (let at = 0; at < chunk.length; at += SLICE) {
      const slice = chunk.subarray(at, at + SLICE);
      const start = Math.max(performance.now(), this.busyUntil);
      this.busyUntil = start + slice.length / this.bytesPerMs;
      this.queued += slice.length;
      this.fifo.push({ at: this.busyUntil + this.delayMs, slice, out });
    }
    this.arm();
    return this.queued <= this.limit;
  }

  /** Delivers every slice whose time has come, in order, then waits for the next one. */
  private pump(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.head < this.fifo.length && this.fifo[this.head]!.at <= now) {
      const { slice, out } = this.fifo[this.head++]!;
      this.queued -= slice.length;
      this.bytes += slice.length;
      if (!out.destroyed) out.write(slice);
    }
    if (this.head > 1024 && this.head * 2 > this.fifo.length) {
      this.fifo.splice(0, this.head);
      this.head = 0;
    }
    if (this.queued <= this.limit / 2) for (const w of this.waiting) w();
    this.arm();
  }

  private arm(): void {
    if (this.timer || this.stopped || this.head >= this.fifo.length) return;
    this.timer = setTimeout(() => this.pump(), Math.max(0, this.fifo[this.head]!.at - performance.now()));
  }

  /** Calls `f` once the queue has drained to half its limit. */
  drained(f: () => void): void {
    const once = () => {
      this.waiting.delete(once);
      f();
    };
    this.waiting.add(once);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

export class ShapedRelay {
  private readonly sockets = new Set<Socket>();
  private down: Pipe;
  private up: Pipe;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly shape: LinkShape,
  ) {
    [this.down, this.up] = [this.pipe(), this.pipe()];
  }

  /** Listens on an ephemeral port of 127.0.0.1 and relays every connection to 127.0.0.1:upstreamPort. */
  static async start(upstreamPort: number, shape: LinkShape): Promise<ShapedRelay> {
    if (!(shape.bitsPerSecond > 0) || !(shape.rttMs >= 0)) throw new Error('a link needs a rate > 0 and an RTT ≥ 0');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const relay = new ShapedRelay(server, (server.address() as AddressInfo).port, shape);
    server.on('connection', (client) => relay.relay(client, upstreamPort));
    return relay;
  }

  private pipe(): Pipe {
    const bytesPerMs = this.shape.bitsPerSecond / 8 / 1000;
    return new Pipe(bytesPerMs, this.shape.rttMs / 2, Math.max(64 << 10, Math.ceil(2 * bytesPerMs * this.shape.rttMs)));
  }

  /** Bytes delivered server → client and client → server since the start or the last reset. */
  get bytesDown(): number {
    return this.down.bytes;
  }
  get bytesUp(): number {
    return this.up.bytes;
  }

  /** Forgets the counts and anything still in flight (between runs; close the clients first). */
  reset(): void {
    this.down.stop();
    this.up.stop();
    [this.down, this.up] = [this.pipe(), this.pipe()];
  }

  private relay(client: Socket, upstreamPort: number): void {
    const upstream = connect({ host: '127.0.0.1', port: upstreamPort });
    const [down, up] = [this.down, this.up];
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      this.sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        this.sockets.delete(s);
        // Let what is in flight arrive before the other side hears of the close, as on a real link.
        setTimeout(() => (s === client ? upstream : client).end(), this.shape.rttMs / 2 + 50).unref();
      });
    }
    const forward = (from: Socket, to: Socket, pipe: Pipe) =>
      from.on('data', (d: Buffer) => {
        if (!pipe.send(d, to)) {
          from.pause();
          pipe.drained(() => from.resume());
        }
      });
    forward(upstream, client, down);
    forward(client, upstream, up);
  }

  async close(): Promise<void> {
    this.down.stop();
    this.up.stop();
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
