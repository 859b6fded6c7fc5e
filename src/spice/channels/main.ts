// Main channel (type 1): session id, the list of channels to open, mouse mode, VM name/uuid.
// spice.proto `channel MainChannel`; flow in docs/spice-protocol.md §3.5: link → INIT → ATTACH_CHANNELS →
// CHANNELS_LIST (which can come again later with one hot-plugged channel).
import { SpiceChannel } from '../channel.ts';
import { Emitter, type Event } from '../emitter.ts';
import { MainCap, MainMsg, MainMsgc } from '../proto/constants.ts';
import { Writer } from '../proto/writer.ts';
import { decodeUtf8 } from '../proto/utf8.ts';
import { SpiceAgent, type AgentOptions } from '../vdagent/agent.ts';
import type { ChannelOptions } from '../channel.ts';
import type { ByteQueue, Transport } from '../transport.ts';

/** Announced by the client: NAME/UUID messages and AGENT_CONNECTED_TOKENS. No migration caps. */
export const MAIN_CLIENT_CAPS = [MainCap.NAME_AND_UUID, MainCap.AGENT_CONNECTED_TOKENS];

export interface MainInit {
  sessionId: number;
  displayChannelsHint: number;
  supportedMouseModes: number;
  currentMouseMode: number;
  agentConnected: boolean;
  agentTokens: number;
  multiMediaTime: number;
  ramHint: number;
}

export interface ChannelId {
  type: number;
  id: number;
}

export interface MouseModeEvent {
  supported: number; // MouseMode flags
  current: number;
}

export class MainChannel extends SpiceChannel {
  private readonly _onInit = new Emitter<MainInit>();
  readonly onInit: Event<MainInit> = this._onInit.event;
  private readonly _onChannelsList = new Emitter<ChannelId[]>();
  readonly onChannelsList: Event<ChannelId[]> = this._onChannelsList.event;
  private readonly _onMouseMode = new Emitter<MouseModeEvent>();
  readonly onMouseMode: Event<MouseModeEvent> = this._onMouseMode.event;
  private readonly _onAgentConnected = new Emitter<boolean>();
  readonly onAgentConnected: Event<boolean> = this._onAgentConnected.event;

  /** The guest agent (clipboard, file transfer, monitors config), usable once `agent.state` is 'ready'. */
  readonly agent: SpiceAgent;
  init: MainInit | undefined;
  name: string | undefined;
  uuid: Uint8Array | undefined;
  mouseMode: MouseModeEvent | undefined;
  multiMediaTime = 0;
  private _mmTimeAt = 0;

  constructor(
    type: number,
    id: number,
    transport: Transport,
    queue: ByteQueue,
    options: ChannelOptions,
    agentOptions: AgentOptions = {},
  ) {
    super(type, id, transport, queue, options);
    this.agent = new SpiceAgent({ send: (t, body) => this.send(t, body) }, agentOptions);
  }

  /** The server's multimedia clock now (ms): the last MULTI_MEDIA_TIME / INIT value plus the time since. */
  mmTime(): number {
    return (this.multiMediaTime + (Date.now() - this._mmTimeAt)) >>> 0;
  }

  /** Sets the multimedia clock from audio playback (last DATA time − output delay; PlaybackChannel.setDelay). */
  syncMmTime(mmTime: number): void {
    this.multiMediaTime = mmTime >>> 0;
    this._mmTimeAt = Date.now();
  }

  /** Asks the server to switch mouse mode (MouseMode.SERVER relative / CLIENT absolute). */
  requestMouseMode(mode: number): void {
    this.send(MainMsgc.MOUSE_MODE_REQUEST, new Writer(2).u16(mode).finish());
  }

  protected handleMessage(type: number, body: Uint8Array): void {
    const r = this.reader(body, type);
    switch (type) {
      case MainMsg.INIT: {
        const init: MainInit = {
          sessionId: r.u32(),
          displayChannelsHint: r.u32(),
          supportedMouseModes: r.u32(),
          currentMouseMode: r.u32(),
          agentConnected: r.u32() !== 0,
          agentTokens: r.u32(),
          multiMediaTime: r.u32(),
          ramHint: r.u32(),
        };
        this.init = init;
        this.multiMediaTime = init.multiMediaTime;
        this._mmTimeAt = Date.now();
        this.mouseMode = { supported: init.supportedMouseModes, current: init.currentMouseMode };
        this._onInit.fire(init);
        this.send(MainMsgc.ATTACH_CHANNELS);
        this.agent.init(init.agentConnected, init.agentTokens);
        return;
      }
      case MainMsg.CHANNELS_LIST: {
        const n = r.count(r.u32(), 2);
        const list = Array.from({ length: n }, () => ({ type: r.u8(), id: r.u8() }));
        this._onChannelsList.fire(list);
        return;
      }
      case MainMsg.MOUSE_MODE:
        this.mouseMode = { supported: r.u16(), current: r.u16() };
        this._onMouseMode.fire(this.mouseMode);
        return;
      case MainMsg.MULTI_MEDIA_TIME:
        this.multiMediaTime = r.u32();
        this._mmTimeAt = Date.now();
        return;
      case MainMsg.NAME: {
        const len = r.u32();
        this.name = decodeUtf8(r.bytesView(Math.min(len, r.remaining)));
        return;
      }
      case MainMsg.UUID:
        this.uuid = r.bytesView(16).slice();
        return;
      case MainMsg.AGENT_CONNECTED:
        this.agent.connected();
        this._onAgentConnected.fire(true);
        return;
      case MainMsg.AGENT_CONNECTED_TOKENS:
        this.agent.connected(r.u32());
        this._onAgentConnected.fire(true);
        return;
      case MainMsg.AGENT_DISCONNECTED:
        this.agent.disconnected();
        this._onAgentConnected.fire(false);
        return;
      case MainMsg.AGENT_DATA:
        this.agent.data(body);
        return;
      case MainMsg.AGENT_TOKEN:
        this.agent.tokens(r.u32());
        return;
      default:
        // Migration (no migration caps announced).
        this.ignore(type);
    }
  }

  protected override onClosed(): void {
    this.agent.close();
    for (const e of [this._onInit, this._onChannelsList, this._onMouseMode, this._onAgentConnected]) e.dispose();
  }
}
