// A relay between the client and QEMU's SPICE server (its TCP port or its unix socket) that can make the main
// channel look like a slow WAN link, and counts the bytes each channel type carries (tests, bench/display.ts).
// Why: libspice-server enables JPEG and zlib-over-GLZ ("auto") only when its startup net test on the
// main channel measures < 10 Mbit/s (server/main-channel-client.cpp: PINGs of 0, 0 and 250 KiB;
// bitrate = 250 KiB × 8 / (roundtrip − latency); is_low_bandwidth). Throttling only the server →
// client direction of the main channel stretches the 250 KiB ping and nothing else.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface RelayOptions {
  /** QEMU's SPICE port on 127.0.0.1 … */
  upstreamPort?: number;
  /** … or its unix socket. */
  upstreamPath?: string;
  /** Listen on this unix socket instead of an ephemeral port on 127.0.0.1. */
  listenPath?: string;
  /** Bytes per second allowed from the server to the client on the main channel; unlimited if absent. */
  mainRate?: number;
  /** Called for each new connection; what it returns sees every chunk each way, as it is forwarded. */
  tap?: () => RelayTap;
}

/** One connection's bytes, client → server (`up`) and server → client (`down`), in order. */
export interface RelayTap {
  up(d: Buffer): void;
  down(d: Buffer): void;
}

/** Byte offset of channel_type in the client's first message (SpiceLinkHeader 16 B + connection_id u32). */
const LINK_CHANNEL_TYPE_AT = 20;
const TICK_MS = 20;

export class SpiceRelay {
  /** Server → client bytes per channel type (1 main, 2 display …), link included. */
  readonly bytesDown = new Map<number, number>();
  /** The channel type of each connection, in the order they linked. */
  readonly channels: number[] = [];
  private readonly _sockets = new Set<Socket>();
  private readonly _timers = new Set<ReturnType<typeof setInterval>>();

  private constructor(
    private readonly _server: Server,
    /** The TCP port it listens on (0 when it listens on `path`). */
    readonly port: number,
    readonly path?: string,
  ) {}

  static async start(opts: RelayOptions): Promise<SpiceRelay> {
    const server = createServer();
    const { listenPath } = opts;
    await new Promise<void>((resolve) =>
      listenPath ? server.listen(listenPath, resolve) : server.listen(0, '127.0.0.1', resolve));
    const relay = new SpiceRelay(server, listenPath ? 0 : (server.address() as AddressInfo).port, listenPath);
    server.on('connection', (client) => relay._pipe(client, opts));
    return relay;
  }

  /** Server → client bytes of all channels. */
  get totalDown(): number {
    let n = 0;
    for (const v of this.bytesDown.values()) n += v;
    return n;
  }

  /** Forgets the counts (between runs). */
  reset(): void {
    this.bytesDown.clear();
    this.channels.length = 0;
  }

  private _pipe(client: Socket, opts: RelayOptions): void {
    const upstream = opts.upstreamPath
      ? connect({ path: opts.upstreamPath })
      : connect({ host: '127.0.0.1', port: opts.upstreamPort ?? 0 });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    for (const s of [client, upstream]) {
      this._sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
        this._sockets.delete(s);
      });
    }
    let type = 0;
    let head = Buffer.alloc(0);
    const tap = opts.tap?.();
    client.on('data', (d: Buffer) => {
      tap?.up(d);
      if (!type) {
        head = Buffer.concat([head, d]);
        if (head.length > LINK_CHANNEL_TYPE_AT) {
          type = head[LINK_CHANNEL_TYPE_AT]!;
          this.channels.push(type);
        }
      }
      upstream.write(d);
    });
    const pending: Buffer[] = [];
    const throttled = (): boolean => opts.mainRate !== undefined && type === 1;
    upstream.on('data', (d: Buffer) => {
      this.bytesDown.set(type, (this.bytesDown.get(type) ?? 0) + d.length);
      tap?.down(d);
      if (throttled()) pending.push(d);
      else client.write(d);
    });
    if (opts.mainRate !== undefined) {
      const perTick = Math.max(1, Math.floor((opts.mainRate * TICK_MS) / 1000));
      const timer = setInterval(() => {
        let budget = perTick;
        while (budget > 0 && pending.length) {
          const c = pending[0]!;
          const n = Math.min(budget, c.length);
          client.write(c.subarray(0, n));
          budget -= n;
          if (n === c.length) pending.shift();
          else pending[0] = c.subarray(n);
        }
      }, TICK_MS);
      this._timers.add(timer);
      client.on('close', () => {
        clearInterval(timer);
        this._timers.delete(timer);
      });
    }
  }

  async close(): Promise<void> {
    for (const t of this._timers) clearInterval(t);
    for (const s of this._sockets) s.destroy();
    await new Promise((r) => this._server.close(r));
  }
}
