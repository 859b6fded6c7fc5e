// Pre-dialled consoles: when the server serves a page that shows a VM's console (the console page or a VM's console
// tab, api/console-pages.ts) to a signed-in user who may use that console, the console's SPICE main channel starts
// linking to QEMU right then, with the very link message the page will send first (public/early-link.js, the core's
// main-channel link): the hand-over of the VM's previous session (takeover.ts), the connection and QEMU's link reply
// (spice-server makes an RSA key for each link; 30-200 ms under load here) happen while the browser parses the page.
// The page's main-channel WebSocket, when its link message is byte for byte the one sent, takes the connection over
// (proxy.ts) and receives the link reply at once; it answers with its ticket as any client does.
// - The same rules as a console WebSocket: the session cookie, the per-VM right, a running VM, the user's console
//   limit (a slot until taken over, and none without room for the page's own sockets).
// - Only a top-level page opened from this origin or typed (Sec-Fetch-Mode navigate, -Dest document, -Site same-origin
//   or none, when the browser sends them): an image, a frame or a sibling site pointing at a console page does not
//   dial (another site's requests carry no session cookie anyway: SameSite=Strict).
// - Not taken over within UNCLAIMED_MS (the page failed to load, or it was not a browser), it is closed.
// - It stops at the link reply: the proxy does not send the ticket for the page. spice-server starts its network
//   test (pings on the main channel) the moment the link is done, and judges the link by how fast the pongs come
//   back; a page still loading its code would answer them all at once, and a slow link would be taken for a fast one
//   (no JPEG: test/web/video.test.ts failed that way when the proxy sent the ticket early, even holding the pings
//   back until the page's own ticket came, for a reason not found yet).
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { consoleVmFor } from '../../api/console-pages.ts';
import { encodeLinkMess } from '../../spice/link.ts';
import { MAIN_CLIENT_CAPS } from '../../spice/channels/main.ts';
import { ChannelType } from '../../spice/proto/constants.ts';
import type { ServerContext } from '../context.ts';
import type { ConsoleLimits } from './limits.ts';
import { parseClientLink, SessionIdSniffer } from './link-sniff.ts';
import { QemuLink, type LinkEnd } from './qemu-link.ts';
import type { ConsoleTakeover } from './takeover.ts';
import { connectionTrace } from './trace.ts';
import { liveVmFor, upgradeCaller } from './upgrade.ts';

/** The WebSockets a console page opens (main, display, inputs, cursor, shared folder, sound both ways). */
const PAGE_SOCKETS = 8;

/** A pre-dialled console not taken over by its page within this time is closed. */
export const UNCLAIMED_MS = 10_000;

/** The main-channel link message a web console sends first (public/early-link.js has the same bytes). */
export const WEB_MAIN_LINK = Buffer.from(
  encodeLinkMess({ connectionId: 0, channelType: ChannelType.MAIN, channelId: 0, channelCaps: MAIN_CLIENT_CAPS }),
);

/** A pre-dialled main channel, taken over by its page's WebSocket (proxy.ts). */
export interface Predial {
  /** The connection once the hand-over let it dial; rejects if it was closed before. */
  readonly ready: Promise<QemuLink>;
  /** The takeover's registration of this connection (proxy.ts calls it when the connection closes). */
  forget(): void;
  /** Where a takeover's close goes once a WebSocket owns the connection. */
  owner: LinkEnd | undefined;
}

interface Entry extends Predial {
  userId: string;
  state: 'waiting' | 'taken' | 'cancelled';
  /** Taken over by a WebSocket: the limit's slot is the WebSocket's from now on. */
  take(): void;
  cancel(): void;
}

export class ConsolePredials {
  private readonly byVm = new Map<string, Entry>();

  constructor(
    private readonly app: FastifyInstance,
    private readonly ctx: ServerContext,
    private readonly takeover: ConsoleTakeover,
    private readonly limits: ConsoleLimits,
  ) {
    app.addHook('onClose', async () => {
      for (const e of [...this.byVm.values()]) e.cancel();
    });
  }

  /** A page is being served: dials its console if it shows one the caller may use. Never throws. */
  fromPage(req: IncomingMessage): void {
    try {
      this.start(req);
    } catch {
      // Not a console page, no such VM, not allowed, not running, over the limit: the page says so itself.
    }
  }

  /** The pre-dialled connection for a page's main-channel link message `link` of user `userId`, if it matches. */
  take(vmId: string, userId: string, link: Buffer): Predial | undefined {
    const e = this.byVm.get(vmId);
    if (!e || e.state !== 'waiting' || e.userId !== userId || !link.equals(WEB_MAIN_LINK)) return undefined;
    this.byVm.delete(vmId);
    e.take();
    return e;
  }

  private start(req: IncomingMessage): void {
    // Each Sec-Fetch-* header, when the browser sends it, must say: a top-level page, opened from this origin or typed.
    const h = req.headers;
    const only = (v: string | string[] | undefined, ok: string[]) => v === undefined || ok.includes(String(v));
    if (req.method !== 'GET' || h['sec-purpose'] || !only(h['sec-fetch-mode'], ['navigate'])) return;
    if (!only(h['sec-fetch-dest'], ['document']) || !only(h['sec-fetch-site'], ['same-origin', 'none'])) return;
    const url = new URL(req.url ?? '/', 'http://localhost');
    const name = consoleVmFor(url.pathname, url.search);
    if (name === undefined) return;
    const caller = upgradeCaller(this.app, this.ctx, req);
    if (!caller) return;
    const vm = liveVmFor(this.ctx, name, caller.user, 'console');
    const prev = this.byVm.get(vm.id);
    // A reload while one waits: the same connection serves it (no second hand-over queued behind the first).
    if (prev?.state === 'waiting' && prev.userId === caller.user.id) return;
    // Room left for the page's own WebSockets (a whole session's channels), or no pre-dial.
    if (this.limits.headroom(caller.user.id) < PAGE_SOCKETS + 1) return;
    const release = this.limits.acquire(caller.user.id);
    prev?.cancel();

    const { ctx, takeover } = this;
    let link: QemuLink | undefined;
    let registered: (() => void) | undefined;
    const timer = setTimeout(() => entry.cancel(), UNCLAIMED_MS).unref();
    const entry: Entry = {
      userId: caller.user.id,
      state: 'waiting',
      owner: undefined,
      ready: undefined as unknown as Promise<QemuLink>,
      forget: () => registered?.(),
      take: () => {
        entry.state = 'taken';
        clearTimeout(timer);
        release();
      },
      cancel: () => {
        if (entry.state !== 'waiting') return;
        entry.state = 'cancelled';
        clearTimeout(timer);
        release();
        link?.end(1000, 'the console page did not take its connection up');
        registered?.();
        if (this.byVm.get(vm.id) === entry) this.byVm.delete(vm.id);
      },
    };
    const trace = connectionTrace();
    trace('link', { channel: ChannelType.MAIN });
    const query = () => ctx.vms.qmp(vm.id).execute('query-spice') as Promise<{ channels?: unknown[] }>;
    (entry as { ready: Promise<QemuLink> }).ready = takeover.handOver(vm.id, query).then(() => {
      const now = ctx.vms.records.get(vm.id);
      if (entry.state === 'cancelled') throw new Error('closed before it dialled');
      if (!now || !['running', 'paused'].includes(now.state)) throw new Error('the VM is not running');
      // A later hand-over (another console) closes this connection, or the WebSocket that took it.
      // Taken by a page but not attached yet: the link ends now and the page's WebSocket closes when it attaches.
      registered = takeover.register(vm.id, (code, why) => {
        if (entry.owner) entry.owner(code, why);
        else if (entry.state === 'taken') link?.end(code, why);
        else entry.cancel();
      });
      const sniffer = new SessionIdSniffer(parseClientLink(WEB_MAIN_LINK)!.miniHeader);
      sniffer.onSession = (id) => takeover.setSession(vm.id, id);
      sniffer.onGiveUp = () => takeover.setSession(vm.id, undefined);
      trace('dial', { channel: ChannelType.MAIN });
      link = new QemuLink(ctx, now, WEB_MAIN_LINK, parseClientLink(WEB_MAIN_LINK)!, sniffer, trace, this.app.log);
      return link;
    });
    entry.ready.catch(() => entry.cancel());
    this.byVm.set(vm.id, entry);
  }
}
