// The display channel of a pre-dialled console (predial.ts): as soon as the pre-dialled main channel's MAIN INIT
// tells the session id, the proxy links display:0 too, with the link message a web console sends in a browser that
// decodes VP8, H.264 and VP9 (spice-web/video-codecs.ts), and sends the console's DISPLAY_INIT for it (the core's
// defaults). spice-server then renders and sends its first picture (100-250 ms under TCG on this machine) while the
// page still loads, and the page's display WebSocket gets it at once. The page's link message must be the same
// bytes (another browser's codecs: it dials as any other, and this one is closed), and its DISPLAY_INIT is checked
// against the one sent and dropped (link-auth.ts sendAhead). Everything else the page sends passes unchanged
// (ACK_SYNC for spice-server's SET_ACK, its preferred video codecs).
import { displayClientCaps, displayInitBody } from '../../spice/channels/display.ts';
import { encodeLinkMess } from '../../spice/link.ts';
import { ChannelType, DisplayMsgc, VideoCodec } from '../../spice/proto/constants.ts';
import { DEFAULT_GLZ_WINDOW_SIZE, DEFAULT_PIXMAP_CACHE_SIZE } from '../../spice/session.ts';
import type { ServerContext } from '../context.ts';
import type { VmRecord } from '../../vm/records.ts';
import { parseClientLink } from './link-sniff.ts';
import { QemuLink, type LinkEnd } from './qemu-link.ts';
import type { ConsoleTakeover } from './takeover.ts';
import { connectionTrace } from './trace.ts';

/** The video codecs a web console announces when the browser decodes them all (spice-web/video-codecs.ts). */
const WEB_VIDEO_CODECS = [VideoCodec.VP8, VideoCodec.H264, VideoCodec.VP9];

/** The web console's display:0 link message in session `sessionId`. */
export function webDisplayLink(sessionId: number): Buffer {
  return Buffer.from(encodeLinkMess({
    connectionId: sessionId, channelType: ChannelType.DISPLAY, channelId: 0,
    channelCaps: displayClientCaps(WEB_VIDEO_CODECS),
  }));
}

/** The web console's first display message, with its mini header (u16 type, u32 size): DISPLAY_INIT. */
export function webDisplayInit(): Buffer {
  const body = displayInitBody(DEFAULT_PIXMAP_CACHE_SIZE, DEFAULT_GLZ_WINDOW_SIZE);
  const msg = Buffer.alloc(6 + body.length);
  msg.writeUInt16LE(DisplayMsgc.INIT, 0);
  msg.writeUInt32LE(body.length, 2);
  msg.set(body, 6);
  return msg;
}

export class PredialledDisplay {
  state: 'waiting' | 'taken' | 'cancelled' = 'waiting';
  /** Where a takeover's close goes once a WebSocket owns the connection. */
  owner: LinkEnd | undefined;
  readonly ready: Promise<QemuLink>;
  private readonly link: QemuLink;
  private readonly linkBytes: Buffer;
  private readonly registered: () => void;
  private readonly timer: NodeJS.Timeout;

  constructor(ctx: ServerContext, vm: VmRecord, sessionId: number, takeover: ConsoleTakeover,
    log: { warn: (o: object, m: string) => void }, unclaimedMs: number) {
    const trace = connectionTrace();
    trace('link', { channel: ChannelType.DISPLAY });
    this.linkBytes = webDisplayLink(sessionId);
    this.link = new QemuLink(ctx, vm, this.linkBytes, parseClientLink(this.linkBytes)!, undefined, trace, log);
    this.link.sendAhead(webDisplayInit());
    this.ready = Promise.resolve(this.link);
    const unregister = takeover.register(vm.id, (code, why) => {
      if (this.owner) this.owner(code, why);
      else if (this.state === 'taken') this.link.end(code, why);
      else this.cancel();
    });
    // Claimed as the session's display:0 (takeover.ts): a page's own display link waits until this one is gone.
    const release = takeover.claimChannel(vm.id, ChannelType.DISPLAY, 0);
    this.registered = () => {
      unregister();
      release?.();
    };
    if (!release) this.link.end(1011, 'the session has its display already');
    this.timer = setTimeout(() => this.cancel(), unclaimedMs).unref();
  }

  /** Whether the page's display link message `link` is the one sent (and the connection still up). */
  matches(link: Buffer): boolean {
    return this.state === 'waiting' && !this.link.isEnded && link.equals(this.linkBytes);
  }

  take(): void {
    this.state = 'taken';
    clearTimeout(this.timer);
  }

  /** The takeover forgets this connection (once it closes); a property, called unbound by proxy.ts. */
  readonly forget = (): void => this.registered();

  cancel(): void {
    if (this.state !== 'waiting') return;
    this.state = 'cancelled';
    clearTimeout(this.timer);
    this.link.end(1000, 'the console page did not take its display up');
    this.registered();
  }
}
