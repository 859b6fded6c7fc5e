// A SPICE session: links the main channel, waits for MAIN INIT (session id), then links every
// channel of CHANNELS_LIST that this client implements, with connection_id = session id
// (docs/spice-protocol.md §3.2, §3.5). Owns the channels, the shared image caches and the GLZ window.
import type { SpiceChannel } from './channel.ts';
import { DisplayChannel, displayClientCaps, type DisplayOptions, type SurfaceInfo } from './channels/display.ts';
import type { ImageCaches } from './channels/display-images.ts';
import { CURSOR_CLIENT_CAPS, CursorChannel } from './channels/cursor.ts';
import { INPUTS_CLIENT_CAPS, InputsChannel } from './channels/inputs.ts';
import { MAIN_CLIENT_CAPS, MainChannel, type ChannelId, type MainInit } from './channels/main.ts';
import { PORT_CLIENT_CAPS, PortChannel } from './channels/port.ts';
import type { AudioCodecs } from './channels/audio-codec.ts';
import { PlaybackChannel, playbackClientCaps } from './channels/playback.ts';
import { RecordChannel, recordClientCaps } from './channels/record.ts';
import { USBREDIR_CLIENT_CAPS, UsbredirChannel } from './usbredir/channel.ts';
import type { AgentOptions, SpiceAgent } from './vdagent/agent.ts';
import { GlzWindow } from './codecs/glz.ts';
import type { VideoDecoders } from './codecs/video.ts';
import { DEFAULT_MAX_IMAGE_PIXELS } from './codecs/types.ts';
import { Emitter, nextEvent, type Event } from './emitter.ts';
import { performLink, type TicketEncryptor } from './link.ts';
import { ChannelType, channelName } from './proto/constants.ts';
import { RgbaSurface, type Surface } from './surface.ts';
import { ByteQueue, type Connector, type Transport } from './transport.ts';

export interface SpiceSessionOptions {
  /** Opens one transport per channel. */
  connect: Connector;
  encryptTicket: TicketEncryptor;
  /** Empty when the server runs with disable-ticketing. */
  password?: string;
  /** Creates drawing surfaces (default: RgbaSurface). */
  createSurface?: (info: SurfaceInfo) => Surface;
  /** ImageCompression value sent as DISPLAY PREFERRED_COMPRESSION; default: the server's choice. */
  preferredCompression?: number;
  /** GLZ dictionary window in pixels (DISPLAY_INIT); 0 turns GLZ off. Default 3 Mi px (spice-gtk: 12 MiB). */
  glzWindowSize?: number;
  /** Pixmap cache size in pixels (DISPLAY_INIT). Default 20 Mi px (spice-gtk: 80 MiB). */
  pixmapCacheSize?: number;
  /** Largest message body accepted. Default 64 MiB. */
  maxMessageSize?: number;
  /** Largest image or surface accepted, in pixels. Default 16 Mi px. */
  maxImagePixels?: number;
  /** Channel types to open from CHANNELS_LIST. Default: display, inputs, cursor. */
  channelTypes?: number[];
  /** Clipboard size limit and resize debounce of the guest agent. */
  agent?: AgentOptions;
  /** Opus for the sound channels (PLAYBACK, RECORD, opened when asked for in `channelTypes`); raw PCM without. */
  audio?: AudioCodecs;
  /**
   * VP8/VP9/H.264 decoders for video streams (announced to the server, preferred in their order); MJPEG only without.
   * A promise (e.g. a browser asking which codecs it has) is awaited before the display channel links.
   */
  video?: VideoDecoders | Promise<VideoDecoders>;
}

export interface ChannelError {
  channel: string;
  error: Error;
}

type AnyChannel =
  MainChannel | DisplayChannel | InputsChannel | CursorChannel | PortChannel | PlaybackChannel | RecordChannel |
  UsbredirChannel;

/** Opened by default. PORT, WEBDAV, PLAYBACK, RECORD and USBREDIR are implemented too, opened when asked for
 * (`channelTypes`). */
const IMPLEMENTED = [ChannelType.DISPLAY, ChannelType.INPUTS, ChannelType.CURSOR] as const;

export class SpiceSession {
  private readonly _onChannel = new Emitter<SpiceChannel>();
  /** A channel finished its link and is running. */
  readonly onChannel: Event<SpiceChannel> = this._onChannel.event;
  private readonly _onChannelError = new Emitter<ChannelError>();
  /** A channel failed to link or stopped with an error. */
  readonly onChannelError: Event<ChannelError> = this._onChannelError.event;
  private readonly _onClose = new Emitter<Error | undefined>();
  /** The main channel ended; every other channel has been closed. */
  readonly onClose: Event<Error | undefined> = this._onClose.event;

  readonly channels = new Map<string, AnyChannel>();
  /** Every channel the server listed (CHANNELS_LIST), opened here or not; linked ones are in `channels`. */
  readonly listed: ChannelId[] = [];
  readonly caches: ImageCaches;
  private readonly _opts: Required<Omit<SpiceSessionOptions, 'preferredCompression' | 'agent' | 'audio' | 'video'>> & {
    preferredCompression?: number;
    agent?: AgentOptions;
    audio?: AudioCodecs;
  };
  private readonly _video: Promise<VideoDecoders | undefined>;
  private _main: MainChannel | undefined;
  private _closed = false;

  private constructor(opts: SpiceSessionOptions) {
    this._opts = {
      password: '',
      createSurface: (info) => new RgbaSurface(info.width, info.height),
      glzWindowSize: 3 * 1024 * 1024,
      pixmapCacheSize: 20 * 1024 * 1024,
      maxMessageSize: 64 * 1024 * 1024,
      maxImagePixels: DEFAULT_MAX_IMAGE_PIXELS,
      channelTypes: [...IMPLEMENTED],
      // an option given as undefined keeps its default
      ...(Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as SpiceSessionOptions),
    };
    // A host that cannot tell its codecs gets MJPEG only (the error is not the session's).
    this._video = Promise.resolve(opts.video).catch(() => undefined);
    // The window is bounded at twice what we announce, whatever the server does.
    this.caches = {
      pixmaps: new Map(),
      palettes: new Map(),
      glz: new GlzWindow(Math.max(1, 2 * this._opts.glzWindowSize)),
    };
  }

  /** Links the main channel and resolves once MAIN INIT arrived; rejects with SpiceLinkError etc. */
  static async connect(opts: SpiceSessionOptions): Promise<SpiceSession> {
    const session = new SpiceSession(opts);
    const main = await session._open(ChannelType.MAIN, 0, 0);
    session._main = main as MainChannel;
    const init = new Promise<MainInit>((resolve, reject) => {
      // MAIN INIT may be in already: a server that sent it with its link reply (a console proxy that linked the
      // main channel before this client came, server/console/predial.ts) is read while the link resolves.
      if (session._main!.init) resolve(session._main!.init);
      else session._main!.onInit(resolve);
      main.onClose((e) => reject(e ?? new Error('main channel closed before INIT')));
    });
    session._main.onChannelsList((list) => session._openListed(list));
    main.onClose((e) => session._end(e));
    try {
      await init;
    } catch (e) {
      session.close();
      throw e;
    }
    return session;
  }

  get main(): MainChannel {
    return this._main!;
  }

  /** The guest agent: clipboard, file transfer, monitors config (see agent.state / agent.whenReady()). */
  get agent(): SpiceAgent {
    return this.main.agent;
  }

  get display(): DisplayChannel | undefined {
    return this.channels.get('display:0') as DisplayChannel | undefined;
  }

  get inputs(): InputsChannel | undefined {
    return this.channels.get('inputs:0') as InputsChannel | undefined;
  }

  get cursor(): CursorChannel | undefined {
    return this.channels.get('cursor:0') as CursorChannel | undefined;
  }

  /** Resolves with the channel once it is linked (e.g. `await session.whenChannel(ChannelType.DISPLAY)`). */
  async whenChannel<T extends SpiceChannel = SpiceChannel>(type: number, id = 0): Promise<T> {
    const existing = this.channels.get(`${channelName(type)}:${id}`);
    if (existing) return existing as unknown as T;
    return (await nextEvent(this.onChannel, (c) => c.type === type && c.id === id)) as T;
  }

  /** Opens channels of `type` from now on too: those the server listed already and any it lists later (the web
   * console links the VM's USB redirection ports only once a device is to be redirected). */
  openChannels(type: number): void {
    if (this._closed || this._opts.channelTypes.includes(type)) return;
    this._opts.channelTypes = [...this._opts.channelTypes, type];
    if (this._main?.init) this._openListed(this.listed.filter((c) => c.type === type));
  }

  close(): void {
    this._end(undefined);
  }

  /** The session ended (closed here, or its main channel did). */
  get closed(): boolean {
    return this._closed;
  }

  private _end(error: Error | undefined): void {
    if (this._closed) return;
    this._closed = true;
    for (const c of this.channels.values()) c.close();
    this._onClose.fire(error);
    for (const e of [this._onChannel, this._onChannelError, this._onClose]) e.dispose();
  }

  private _openListed(list: ChannelId[]): void {
    for (const { type, id } of list) {
      if (!this.listed.some((c) => c.type === type && c.id === id)) this.listed.push({ type, id });
      // CHANNELS_LIST can come again with one hot-plugged channel: open only new ones.
      if (!this._opts.channelTypes.includes(type) || this.channels.has(`${channelName(type)}:${id}`)) continue;
      this._open(type, id, this.main.init!.sessionId).catch((error: Error) => {
        this._onChannelError.fire({ channel: `${channelName(type)}:${id}`, error });
      });
    }
  }

  private async _open(type: number, id: number, connectionId: number): Promise<AnyChannel> {
    const label = `${channelName(type)}:${id}`;
    const transport = await this._opts.connect(type, id);
    const video = type === ChannelType.DISPLAY ? await this._video : undefined;
    // Ended while this channel's socket opened: it links no more (a late link of a replaced session is refused).
    if (this._closed && type !== ChannelType.MAIN) {
      transport.close();
      throw new Error('session closed');
    }
    const queue = new ByteQueue();
    transport.start(queue);
    let remote;
    try {
      remote = await performLink(transport, queue, {
        connectionId,
        channelType: type,
        channelId: id,
        channelCaps: clientCaps(type, this._opts.audio, video),
        password: this._opts.password,
        encryptTicket: this._opts.encryptTicket,
        channelLabel: label,
      });
    } catch (e) {
      transport.close();
      throw e;
    }
    if (this._closed) {
      transport.close();
      throw new Error('session closed');
    }
    const options = {
      maxMessageSize: this._opts.maxMessageSize,
      lookup: (t: number, i: number) => this.channels.get(`${channelName(t)}:${i}`),
    };
    const channel = this._create(type, id, transport, queue, options, remote.channelCaps, video);
    this.channels.set(label, channel);
    channel.onClose((error) => {
      this.channels.delete(label);
      if (error) this._onChannelError.fire({ channel: label, error });
    });
    void channel.run();
    this._onChannel.fire(channel);
    return channel;
  }

  private _create(
    type: number,
    id: number,
    transport: Transport,
    queue: ByteQueue,
    options: { maxMessageSize: number; lookup: (t: number, i: number) => SpiceChannel | undefined },
    serverCaps: number[],
    video: VideoDecoders | undefined,
  ): AnyChannel {
    switch (type) {
      case ChannelType.MAIN:
        return new MainChannel(type, id, transport, queue, options, this._opts.agent);
      case ChannelType.DISPLAY: {
        const displayOpts: DisplayOptions = {
          caches: this.caches,
          createSurface: this._opts.createSurface,
          pixmapCacheSize: this._opts.pixmapCacheSize,
          glzWindowSize: this._opts.glzWindowSize,
          preferredCompression: this._opts.preferredCompression,
          maxImagePixels: this._opts.maxImagePixels,
          serverCaps,
          mmTime: () => this.main.mmTime(),
          video,
        };
        return new DisplayChannel(type, id, transport, queue, options, displayOpts);
      }
      case ChannelType.INPUTS:
        return new InputsChannel(type, id, transport, queue, options);
      case ChannelType.CURSOR:
        return new CursorChannel(type, id, transport, queue, options, this._opts.maxImagePixels);
      case ChannelType.PORT:
      case ChannelType.WEBDAV:
        return new PortChannel(type, id, transport, queue, options);
      case ChannelType.PLAYBACK:
        return new PlaybackChannel(type, id, transport, queue, options, {
          codecs: this._opts.audio,
          syncMmTime: (t) => this.main.syncMmTime(t),
        });
      case ChannelType.RECORD:
        return new RecordChannel(type, id, transport, queue, options, {
          codecs: this._opts.audio, serverCaps, mmTime: () => this.main.mmTime(),
        });
      case ChannelType.USBREDIR:
        return new UsbredirChannel(type, id, transport, queue, options);
      default:
        throw new Error(`channel type ${type} not implemented`);
    }
  }
}

function clientCaps(type: number, audio: AudioCodecs | undefined, video: VideoDecoders | undefined): readonly number[] {
  switch (type) {
    case ChannelType.MAIN:
      return MAIN_CLIENT_CAPS;
    case ChannelType.DISPLAY:
      return displayClientCaps(video?.codecs);
    case ChannelType.INPUTS:
      return INPUTS_CLIENT_CAPS;
    case ChannelType.CURSOR:
      return CURSOR_CLIENT_CAPS;
    case ChannelType.PORT:
    case ChannelType.WEBDAV:
      return PORT_CLIENT_CAPS;
    case ChannelType.PLAYBACK:
      return playbackClientCaps(audio);
    case ChannelType.RECORD:
      return recordClientCaps(audio);
    case ChannelType.USBREDIR:
      return USBREDIR_CLIENT_CAPS;
    default:
      return [];
  }
}
