// The console proxy: each WebSocket at /api/vms/{vm}/spice carries ONE SPICE channel connection between a client
// (the browser console, `oriel console`) and the VM's SPICE server on a loopback TCP port, whose per-boot password
// only this server knows (vm/spice-endpoint.ts; the proxy answers the ticket step itself, link-auth.ts). TCP, not
// a unix socket, so spice-server measures the client's real link and compresses for it (JPEG, ZLIB-GLZ, streams).
//
// - Who: a session cookie (same origin only), an API token (Authorization: Bearer), or a console ticket
//   (?ticket=, single-use per SPICE session, see tickets.ts). Checked, with the per-VM permission, before the
//   upgrade is accepted; a ticket's use is checked against the client's link message before QEMU is dialled.
//   The WebSocket is closed (4401, with the reason) when that credential ends (auth/streams.ts).
// - What: the client's first bytes must be a SPICE link message, or the console is closed; frames are bounded.
// - Back-pressure both ways: a slow browser pauses reading from QEMU, a slow QEMU pauses reading from the browser,
//   so the server never buffers without bound.
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import type { FastifyInstance } from 'fastify';
import { unauthorized } from '../../errors.ts';
import type { ServerContext } from '../context.ts';
import type { User } from '../auth/users.ts';
import { checkOrigin, liveVmFor, upgradeCaller, type VmUpgrade } from './upgrade.ts';
import {
  CHANNEL_CURSOR, CHANNEL_DISPLAY, CHANNEL_MAIN, MAX_LINK_BYTES, parseClientLink, SessionIdSniffer, type ClientLink,
} from './link-sniff.ts';
import type { ConsoleTickets } from './tickets.ts';
import type { ConsoleLimits } from './limits.ts';
import type { VmRecord } from '../../vm/records.ts';
import { ConsoleTakeover } from './takeover.ts';
import { QemuLink } from './qemu-link.ts';
import { CONSOLE_TAKEN_OVER } from '../../api/console-close.ts';
import { connectionTrace } from './trace.ts';

/**
 * permessage-deflate (RFC 7692) toward clients that offer it (browsers do, and the Node client), for the display
 * and cursor channels only: SPICE's own image codecs (LZ, GLZ, LZ4) are LZ77 without entropy coding, so deflate on
 * top saves about a third of a desktop's bytes (more for text and flat colours), which is what a slow link needs.
 * Never the main channel: spice-server times its 250 KB start-up ping through it to measure the link and chooses
 * JPEG and ZLIB-GLZ for a slow one; compressed, the ping would arrive at once and the link would look fast. Level 1
 * and a whole-stream context downward for speed and ratio; the client's messages (keys, the link's ticket) are
 * compressed each on its own if at all, so nothing typed shares a compression context with anything else.
 */
const CONSOLE_DEFLATE = {
  zlibDeflateOptions: { level: 1 },
  threshold: 256,
  clientNoContextTakeover: true,
} as const;

/** Largest frame a client may send. SPICE client messages are small (agent data is chunked to 2 KiB). */
export const MAX_FRAME = 1 << 20;
/** Bytes queued towards the browser before reading from QEMU pauses, and the level at which it resumes. */
const HIGH_WATER = 4 << 20;
const LOW_WATER = 1 << 20;
/** A client must send its SPICE link message within this time of the upgrade, or the WebSocket is closed. */
export const LINK_DEADLINE_MS = 5_000;

type Auth = { kind: 'user'; user: User } | { kind: 'ticket'; ticket: string };

/** The upgrade handler for /api/vms/{vm}/spice (see upgrade.ts). */
export function spiceUpgrade(
  app: FastifyInstance,
  ctx: ServerContext,
  tickets: ConsoleTickets,
  limits: ConsoleLimits,
): VmUpgrade {
  const takeover = new ConsoleTakeover();
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME, perMessageDeflate: CONSOLE_DEFLATE });
  const live = new Set<WebSocket>();
  app.addHook('onClose', async () => {
    for (const ws of live) ws.terminate();
    wss.close();
  });
  return (req, socket, head, ref) => {
    checkOrigin(req);
    const caller = upgradeCaller(app, ctx, req);
    const user = caller?.user;
    const ticket = new URL(req.url ?? '/', 'http://localhost').searchParams.get('ticket');
    const auth: Auth | undefined = user ? { kind: 'user', user } : ticket ? { kind: 'ticket', ticket } : undefined;
    if (!auth) throw unauthorized();
    // A ticket is checked before any WebSocket exists (its use, main channel or another, once the link is read),
    // with one answer for every failure: a made-up ticket learns nothing of which VMs exist or run.
    const badTicket = () => unauthorized('console ticket not valid (expired, already used, or for another VM)');
    let vm: VmRecord;
    try {
      vm = liveVmFor(ctx, ref, user, 'console');
    } catch (e) {
      throw user ? e : badTicket();
    }
    // A ticket is only as good as the session or token it was issued under, which may have ended since.
    const credential = caller ? caller.credential : tickets.holder(ticket!, vm.id);
    if (!credential || !ctx.users.alive(credential)) throw badTicket();
    // Counted until the TCP connection closes, whether or not the handshake succeeds.
    socket.once('close', limits.acquire(credential.userId));
    wss.handleUpgrade(req, socket, head, (ws) => {
      live.add(ws);
      const end = bridge(ctx, { tickets, takeover }, ws, vm.id, auth, app.log);
      // Closed when its credential ends (sign-out, revocation, expiry, password change, account deleted).
      const unregister = ctx.users.streams.add(credential, (reason) => {
        end(4401, reason);
        setTimeout(() => ws.terminate(), 1000).unref();
      });
      ws.once('close', () => {
        live.delete(ws);
        unregister();
      });
    });
  };
}

function bridge(
  ctx: ServerContext,
  deps: { tickets: ConsoleTickets; takeover: ConsoleTakeover },
  ws: WebSocket,
  vmId: string,
  auth: Auth,
  log: FastifyInstance['log'],
): (code: number, reason: string) => void {
  const { tickets, takeover } = deps;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let upstream: QemuLink | undefined;
  let dialing = false; // a main link waits for the previous console to be let go (takeover.ts)
  let forget: (() => void) | undefined;
  let closed = false;
  let outstanding = 0; // bytes handed to ws.send and not yet written to the browser's socket
  let releaseTicket: (() => void) | undefined;
  const trace = connectionTrace();
  let channel: number | undefined;
  trace('open');

  const deadline = setTimeout(() => {
    if (upstream || dialing) return;
    close(1008, `no SPICE link message within ${LINK_DEADLINE_MS / 1000} s`);
    setTimeout(() => ws.terminate(), 1000).unref(); // no waiting for a silent peer's closing handshake
  }, LINK_DEADLINE_MS);
  let heldBack = false; // the browser's socket paused until QEMU's drains
  const browser = () => (ws as unknown as { _socket: Socket })._socket;
  const close = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    clearTimeout(deadline);
    // Read the browser again: its answer to the closing handshake must get through (QEMU's socket never drains now).
    if (heldBack) browser().resume();
    heldBack = false;
    forget?.();
    upstream?.end(code, reason);
    releaseTicket?.();
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason.slice(0, 120));
  };

  ws.on('message', (data: RawData, isBinary: boolean) => {
    if (closed) return;
    if (!isBinary) return close(1003, 'SPICE consoles carry binary frames only');
    const chunk = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (upstream) {
      // Back-pressure towards QEMU: stop reading the browser while the socket is full (one wait for 'drain': frames
      // the browser's socket had already delivered still come, and find it full too).
      if (!upstream.write(chunk) && !heldBack) {
        heldBack = true;
        browser().pause();
        upstream.sock.once('drain', () => {
          if (!heldBack) return;
          heldBack = false;
          browser().resume();
        });
      }
      return;
    }
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (dialing) return;
    let link;
    try {
      link = parseClientLink(Buffer.concat(pending));
    } catch (e) {
      return close(1008, `not a SPICE connection: ${(e as Error).message}`);
    }
    if (!link) {
      if (pendingBytes > MAX_LINK_BYTES) close(1008, 'not a SPICE connection');
      return;
    }
    const isMain = link.channelType === CHANNEL_MAIN && link.connectionId === 0;
    channel = link.channelType;
    trace('link', { channel });
    let sniffer: SessionIdSniffer | undefined;
    if (auth.kind === 'ticket') {
      if (isMain) {
        const claim = tickets.claimForMain(auth.ticket, vmId);
        if (!claim) return close(4401, 'console ticket not valid (expired or already used)');
        const session = claim.session;
        releaseTicket = () => (session.open = false);
        sniffer = new SessionIdSniffer(link.miniHeader);
        sniffer.onSession = (id) => (session.id = id);
      } else if (!tickets.checkForChannel(auth.ticket, vmId, link.connectionId)) {
        return close(4401, 'console ticket not valid for this session');
      }
    }
    // The session's id, for the takeover: its other channels are let through, a replaced session's are not.
    if (isMain) return mainLink(link, sniffer ?? new SessionIdSniffer(link.miniHeader));
    if (!takeover.admits(vmId, link.connectionId)) {
      return close(CONSOLE_TAKEN_OVER, 'this console session was replaced by a newer one');
    }
    dial(link, sniffer);
  });

  function mainLink(link: ClientLink, s: SessionIdSniffer): void {
    const told = s.onSession;
    s.onSession = (id) => {
      told?.(id);
      if (!closed) takeover.setSession(vmId, id);
    };
    s.onGiveUp = () => { if (!closed) takeover.setSession(vmId, undefined); };
    // A new session: the previous one is let go first (takeover.ts); what the client sends meanwhile waits.
    dialing = true;
    const query = () => ctx.vms.qmp(vmId).execute('query-spice') as Promise<{ channels?: unknown[] }>;
    takeover.handOver(vmId, query).then(() => {
      dialing = false;
      if (!closed) dial(link, s);
    }, (e: Error) => close(1011, `console hand-over: ${e.message}`));
  }

  function dial(link: ClientLink, sniffer: SessionIdSniffer | undefined): void {
    const vm = ctx.vms.records.get(vmId);
    if (!vm || !['running', 'paused'].includes(vm.state)) return close(1011, 'the VM is not running');
    const unregister = takeover.register(vmId, close);
    const release = link.channelType === CHANNEL_MAIN ? () => undefined
      : takeover.claimChannel(vmId, link.channelType, link.channelId);
    if (!release) {
      unregister();
      return close(1008, 'this channel of the console session is open already');
    }
    forget = () => {
      unregister();
      release();
    };
    trace('dial', { channel });
    const first = Buffer.concat(pending);
    pending = [];
    // QEMU's bytes to the client, with back-pressure: a slow client stops us reading QEMU.
    const compress = channel === CHANNEL_DISPLAY || channel === CHANNEL_CURSOR;
    const up = new QemuLink(ctx, vm, first, link, sniffer, trace, log, (buf) => {
      outstanding += buf.length;
      ws.send(buf, { binary: true, compress }, () => {
        outstanding -= buf.length;
        if (outstanding < LOW_WATER && up.sock.isPaused()) up.sock.resume();
      });
      if (outstanding > HIGH_WATER) up.sock.pause();
    }, close);
    upstream = up;
  }
  ws.on('close', () => close(1000, 'client closed'));
  ws.on('error', (e) => {
    log.info({ err: e.message }, 'console: client WebSocket error');
    close(1009, e.message);
  });
  return close;
}
