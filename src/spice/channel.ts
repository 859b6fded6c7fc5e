// One SPICE channel after the link: mini-header framing and the messages every channel shares
// (spice.proto `channel BaseChannel`; docs/spice-protocol.md §3.4). Channel kinds extend this class and
// handle their own message numbers (>= 101).
import { Emitter, type Event } from './emitter.ts';
import { BaseMsg, BaseMsgc, MINI_HEADER_SIZE, channelName, serverMsgName } from './proto/constants.ts';
import { SpiceProtocolError } from './proto/errors.ts';
import { Reader } from './proto/reader.ts';
import { Writer } from './proto/writer.ts';
import { SpiceConnectionClosed, type ByteQueue, type Transport } from './transport.ts';
import { decodeUtf8 } from './proto/utf8.ts';


export interface ChannelOptions {
  /** Largest message body accepted; larger sizes are a protocol error, never an allocation. */
  maxMessageSize: number;
  /** Finds sibling channels for WAIT_FOR_CHANNELS. */
  lookup: (type: number, id: number) => SpiceChannel | undefined;
}

export interface NotifyEvent {
  severity: number; // spice.proto notify_severity: 0 INFO, 1 WARN, 2 ERROR
  visibility: number;
  what: number;
  message: string;
}

export interface ChannelStats {
  messages: number;
  bytes: number;
  /** Server messages this client read but does not act on, by "NUM NAME". */
  ignored: Record<string, number>;
}

export abstract class SpiceChannel {
  private readonly _onClose = new Emitter<Error | undefined>();
  /** Fires once when the channel stops; the argument is the error that stopped it, if any. */
  readonly onClose: Event<Error | undefined> = this._onClose.event;
  private readonly _onNotify = new Emitter<NotifyEvent>();
  readonly onNotify: Event<NotifyEvent> = this._onNotify.event;

  readonly stats: ChannelStats = { messages: 0, bytes: 0, ignored: {} };
  /** DISCONNECTING reason (spice.proto link_err) if the server announced why it is closing. */
  disconnectReason: number | undefined;

  private _ackWindow = 0;
  private _ackLeft = 0;
  /** Serial of the last fully processed message; with the mini header serials are implicit, counted from 1. */
  private _processed = 0;
  private _serialWaiters: { serial: number; resolve: () => void }[] = [];
  private _closed = false;

  constructor(
    readonly type: number,
    readonly id: number,
    private readonly _transport: Transport,
    private readonly _queue: ByteQueue,
    private readonly _options: ChannelOptions,
  ) {}

  get label(): string {
    return `${channelName(this.type)}:${this.id}`;
  }

  get closed(): boolean {
    return this._closed;
  }

  /** Bytes written but still queued in the transport (0 if the transport does not tell). */
  get buffered(): number {
    return this._transport.bufferedAmount?.() ?? 0;
  }

  /** Runs the receive loop until the connection ends; never rejects (errors go to onClose). */
  async run(): Promise<void> {
    let error: Error | undefined;
    try {
      this.onLinked();
      for (;;) {
        const hdr = new Reader(await this._queue.read(MINI_HEADER_SIZE), 0, 'mini header');
        const type = hdr.u16();
        const size = hdr.u32();
        if (size > this._options.maxMessageSize) {
          throw new SpiceProtocolError(
            `${this.label}: message ${serverMsgName(this.type, type)} of ${size} bytes exceeds ${this._options.maxMessageSize}`,
          );
        }
        const body = size ? await this._queue.read(size) : new Uint8Array(0);
        this.stats.messages++;
        this.stats.bytes += MINI_HEADER_SIZE + size;
        await this._dispatch(type, body);
        this._countAck();
        this._markProcessed();
      }
    } catch (e) {
      error =
        e instanceof SpiceConnectionClosed && (this._closed || this.disconnectReason !== undefined)
          ? undefined
          : (e as Error);
    }
    this._shutdown(error);
  }

  /** Sends one message with a mini header. */
  send(type: number, body: Uint8Array = new Uint8Array(0)): void {
    if (this._closed) return;
    const out = new Uint8Array(MINI_HEADER_SIZE + body.length);
    const v = new DataView(out.buffer);
    v.setUint16(0, type, true);
    v.setUint32(2, body.length, true);
    out.set(body, MINI_HEADER_SIZE);
    this._transport.write(out);
  }

  close(): void {
    this._shutdown(undefined);
  }

  /** Resolves once this channel has processed message `serial` (or is closed). */
  whenProcessed(serial: number): Promise<void> {
    if (this._processed >= serial || this._closed) return Promise.resolve();
    return new Promise((resolve) => this._serialWaiters.push({ serial, resolve }));
  }

  /** Called after the link, before the first message is read (e.g. DISPLAY_INIT). */
  protected onLinked(): void {}

  /** Handles a channel-specific message (type >= 101). */
  protected abstract handleMessage(type: number, body: Uint8Array): void | Promise<void>;

  /** Counts a message this client does not act on, so tests and traces can see it. */
  protected ignore(type: number): void {
    const k = serverMsgName(this.type, type);
    this.stats.ignored[k] = (this.stats.ignored[k] ?? 0) + 1;
  }

  protected reader(body: Uint8Array, type: number): Reader {
    return new Reader(body, 0, `${this.label} ${serverMsgName(this.type, type)}`);
  }

  private async _dispatch(type: number, body: Uint8Array): Promise<void> {
    if (type >= 101) return this.handleMessage(type, body);
    const r = this.reader(body, type);
    switch (type) {
      case BaseMsg.SET_ACK: {
        // Flow control (red-channel-client.cpp): answer ACK_SYNC(generation), then ACK every
        // `window` messages; the server stalls once 2×window messages are unacknowledged. SET_ACK
        // itself is counted, as the server counts it (send_set_ack zeroes its window before sending).
        const generation = r.u32();
        this._ackWindow = this._ackLeft = r.u32();
        this.send(BaseMsgc.ACK_SYNC, new Writer(4).u32(generation).finish());
        return;
      }
      case BaseMsg.PING: {
        // Echo id + timestamp; the payload (250 KiB in the main channel's net test) is not returned.
        const id = r.u32();
        const timestamp = r.u64();
        this.send(BaseMsgc.PONG, new Writer(12).u32(id).u64(timestamp).finish());
        return;
      }
      case BaseMsg.WAIT_FOR_CHANNELS:
        return this.waitForChannels(r);
      case BaseMsg.DISCONNECTING:
        r.u64(); // time_stamp
        this.disconnectReason = r.u32();
        return;
      case BaseMsg.NOTIFY: {
        r.u64(); // time_stamp
        const severity = r.u32();
        const visibility = r.u32();
        const what = r.u32();
        const len = r.u32();
        const text = r.bytesView(Math.min(len, r.remaining));
        const message = decodeUtf8(text);
        this._onNotify.fire({ severity, visibility, what, message });
        return;
      }
      case BaseMsg.LIST:
        return this._dispatchList(r);
      default:
        // MIGRATE / MIGRATE_DATA: no migration caps are announced, so the server sends none.
        this.ignore(type);
    }
  }

  /** SPICE_MSG_LIST body: {count u16, offsets u32[count]} → sub-messages {type u16, size u32, data}. */
  private async _dispatchList(r: Reader): Promise<void> {
    const count = r.u16();
    r.count(count, 4);
    const offsets = Array.from({ length: count }, () => r.u32());
    for (const off of offsets) {
      const s = r.at(off, `${this.label} LIST item`);
      const type = s.u16();
      const size = s.u32();
      if (type === BaseMsg.LIST) throw new SpiceProtocolError(`${this.label}: nested LIST`);
      await this._dispatch(type, s.bytesView(size));
    }
  }

  /** WAIT_FOR_CHANNELS {count u8, [{type u8, id u8, serial u64}]}: block until siblings caught up. */
  protected async waitForChannels(r: Reader): Promise<void> {
    const n = r.count(r.u8(), 10);
    for (let i = 0; i < n; i++) {
      const type = r.u8();
      const id = r.u8();
      const serial = r.u64n();
      // A channel we never opened cannot be waited for (spice-gtk channel-base.c wait_for_channel).
      await this._options.lookup(type, id)?.whenProcessed(serial);
    }
  }

  private _countAck(): void {
    if (this._ackLeft === 0) return;
    if (--this._ackLeft === 0) {
      this.send(BaseMsgc.ACK);
      this._ackLeft = this._ackWindow;
    }
  }

  private _markProcessed(): void {
    this._processed++;
    if (this._serialWaiters.length === 0) return;
    const ready = this._serialWaiters.filter((w) => w.serial <= this._processed);
    this._serialWaiters = this._serialWaiters.filter((w) => w.serial > this._processed);
    for (const w of ready) w.resolve();
  }

  private _shutdown(error: Error | undefined): void {
    if (this._closed) return;
    this._closed = true;
    this._transport.close();
    this._queue.closed();
    for (const w of this._serialWaiters) w.resolve();
    this._serialWaiters = [];
    this.onClosed();
    this._onClose.fire(error);
    this._onClose.dispose();
    this._onNotify.dispose();
  }

  /** Releases channel-specific resources. */
  protected onClosed(): void {}
}
