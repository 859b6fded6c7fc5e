// The byte pipe between the client and the guest agent, inside the main channel (docs/spice-protocol.md §3.9).
//
// Outgoing: each agent message is cut into AGENT_DATA bodies of at most 2048 bytes (the server disconnects a client
// that sends more), the chunks of one message never interleave with another's, and every chunk costs one of the
// tokens the server grants (MAIN INIT / AGENT_CONNECTED_TOKENS, refilled by AGENT_TOKEN). Small control messages
// (clipboard, monitors) overtake bulk ones (file data) that have not started yet.
//
// Incoming: AGENT_DATA bodies are a byte stream whose boundaries need not match messages; messages are reassembled
// from their headers. The client grants the server a window of tokens (AGENT_START) and returns them (AGENT_TOKEN) as
// it consumes chunks, so a guest can never make it buffer more than it chose. A message larger than the limit is
// skipped without being stored, and reported.
import {
  AGENT_HEADER_SIZE,
  AGENT_MAX_CHUNK,
  assertProtocol,
  encodeMessage,
  readHeader,
  type AgentMessage,
} from './protocol.ts';

export interface PipeSink {
  /** Sends one AGENT_DATA body (≤ 2048 bytes). */
  sendData(chunk: Uint8Array): void;
  /** Returns `n` tokens to the server (MSGC AGENT_TOKEN). */
  sendTokens(n: number): void;
}

interface Outgoing {
  chunks: Uint8Array[];
  next: number;
  bulk: boolean;
  /** Tag to drop a transfer's queued messages on cancel. */
  tag?: string;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** Tokens the client grants the server for agent → client chunks. */
export const CLIENT_TOKEN_WINDOW = 32;

export class AgentPipe {
  private _serverTokens = 0;
  private _queue: Outgoing[] = [];
  private _current: Outgoing | undefined;
  private _owed = 0;
  private readonly _header = new Uint8Array(AGENT_HEADER_SIZE);
  private _headerLen = 0;
  private _body: { type: number; opaque: bigint; data: Uint8Array; filled: number } | undefined;
  private _skip = 0;
  private _drainWaiters: { n: number; resolve: () => void }[] = [];

  constructor(
    private readonly _sink: PipeSink,
    private readonly _onMessage: (m: AgentMessage) => void,
    private readonly _onOversized: (type: number, size: number) => void,
    /** Largest incoming message kept; bigger ones are skipped. */
    private readonly _maxMessage: number,
  ) {}

  get serverTokens(): number {
    return this._serverTokens;
  }

  /** Messages queued (not yet fully sent), bulk ones only. */
  get bulkQueued(): number {
    return this._queue.filter((m) => m.bulk).length + (this._current?.bulk ? 1 : 0);
  }

  setServerTokens(n: number): void {
    this._serverTokens = n;
    this._pump();
  }

  addServerTokens(n: number): void {
    this._serverTokens += n;
    this._pump();
  }

  /** Queues one message; resolves when its last chunk has been handed to the channel. */
  send(type: number, payload: Uint8Array, opts: { bulk?: boolean; tag?: string } = {}): Promise<void> {
    const bytes = encodeMessage(type, payload);
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; at += AGENT_MAX_CHUNK) chunks.push(bytes.subarray(at, at + AGENT_MAX_CHUNK));
    return new Promise((resolve, reject) => {
      const m: Outgoing = { chunks, next: 0, bulk: !!opts.bulk, tag: opts.tag, resolve, reject };
      if (m.bulk) this._queue.push(m);
      else {
        // Control messages go before the first bulk message that has not started.
        const i = this._queue.findIndex((q) => q.bulk);
        if (i < 0) this._queue.push(m);
        else this._queue.splice(i, 0, m);
      }
      this._pump();
    });
  }

  /** Drops queued messages with `tag` that have not started (a started one must finish: chunks cannot be recalled). */
  drop(tag: string, error: Error): void {
    const keep: Outgoing[] = [];
    for (const m of this._queue) {
      if (m.tag === tag) m.reject(error);
      else keep.push(m);
    }
    this._queue = keep;
    this._wakeDrain();
  }

  /** Resolves when at most `n` bulk messages wait (back-pressure for streaming producers). */
  whenBulkBelow(n: number): Promise<void> {
    if (this.bulkQueued <= n) return Promise.resolve();
    return new Promise((resolve) => this._drainWaiters.push({ n, resolve }));
  }

  /** Fails everything queued (agent gone, channel closed) and forgets partial input. */
  reset(error: Error): void {
    const all = [...(this._current ? [this._current] : []), ...this._queue];
    this._queue = [];
    this._current = undefined;
    this._headerLen = 0;
    this._body = undefined;
    this._skip = 0;
    this._owed = 0;
    for (const m of all) m.reject(error);
    this._wakeDrain();
  }

  /** Takes one AGENT_DATA body from the server. */
  receive(chunk: Uint8Array): void {
    this._owed++;
    if (this._owed >= CLIENT_TOKEN_WINDOW / 2) {
      this._sink.sendTokens(this._owed);
      this._owed = 0;
    }
    let at = 0;
    while (at < chunk.length) {
      if (this._skip > 0) {
        const n = Math.min(this._skip, chunk.length - at);
        this._skip -= n;
        at += n;
        continue;
      }
      if (!this._body) {
        const n = Math.min(AGENT_HEADER_SIZE - this._headerLen, chunk.length - at);
        this._header.set(chunk.subarray(at, at + n), this._headerLen);
        this._headerLen += n;
        at += n;
        if (this._headerLen < AGENT_HEADER_SIZE) return;
        this._headerLen = 0;
        const h = readHeader(this._header);
        assertProtocol(h);
        if (h.size > this._maxMessage) {
          this._onOversized(h.type, h.size);
          this._skip = h.size;
          continue;
        }
        // Allocation bounded by _maxMessage, checked above.
        this._body = { type: h.type, opaque: h.opaque, data: new Uint8Array(h.size), filled: 0 };
      }
      const b = this._body;
      const n = Math.min(b.data.length - b.filled, chunk.length - at);
      b.data.set(chunk.subarray(at, at + n), b.filled);
      b.filled += n;
      at += n;
      if (b.filled === b.data.length) {
        this._body = undefined;
        this._onMessage({ type: b.type, opaque: b.opaque, data: b.data });
      }
    }
  }

  private _pump(): void {
    while (this._serverTokens > 0) {
      if (!this._current) {
        this._current = this._queue.shift();
        if (!this._current) break;
      }
      const m = this._current;
      this._sink.sendData(m.chunks[m.next++]!);
      this._serverTokens--;
      if (m.next === m.chunks.length) {
        this._current = undefined;
        m.resolve();
        this._wakeDrain();
      }
    }
  }

  private _wakeDrain(): void {
    const queued = this.bulkQueued;
    this._drainWaiters = this._drainWaiters.filter((w) => (queued <= w.n ? (w.resolve(), false) : true));
  }
}
