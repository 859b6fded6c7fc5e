// The console's SPICE session, started as early as the page allows. A console page (/vms/NAME/console, or a VM's
// page on its console tab) calls preconnect() as its script starts: the session links in parallel with the sign-in
// check, the VM's details and the first render, and the SpiceConsole adopts it when it mounts (takePreconnected).
// The WebSockets are authenticated by the session cookie (same origin; the server checks the Origin), so nothing
// has to be fetched first. A session nobody adopts is closed; one that fails is simply not adopted.
import { ChannelType, RgbaSurface, SpiceSession } from '../spice/index.ts';
import { channelName } from '../spice/proto/constants.ts';
import { browserAudioCodecs } from './audio-codecs.ts';
import { MAX_CLIPBOARD_BYTES } from './clipboard.ts';
import { browserEncryptTicket } from './ticket.ts';
import { browserVideoDecoders } from './video-codecs.ts';
import { websocketConnector, wsUrl } from './transport.ts';

/** A preconnected session not adopted by then is closed. */
const UNCLAIMED_MS = 15_000;

/** Opens a SPICE session through the console proxy at `path` (/api/vms/NAME/spice). */
export function openSession(path: string): Promise<SpiceSession> {
  const linked = SpiceSession.connect({
    connect: websocketConnector(wsUrl(path)),
    encryptTicket: browserEncryptTicket,
    createSurface: (info) => new RgbaSurface(info.width, info.height),
    // Guest clipboard items up to the shared limit (plus room for the message header).
    agent: { maxClipboard: MAX_CLIPBOARD_BYTES + 64 },
    // WEBDAV: shared folders and fast file drops (shared-folder.ts); sound both ways (console/audio.ts); each when
    // the VM has the channel.
    channelTypes: [
      ChannelType.DISPLAY, ChannelType.INPUTS, ChannelType.CURSOR, ChannelType.WEBDAV, ChannelType.PLAYBACK,
      ChannelType.RECORD,
    ],
    audio: browserAudioCodecs(),
    // VP8/H.264/VP9 streams through WebCodecs (asked while the main channel links; MJPEG only without).
    video: browserVideoDecoders().finally(() => performance.mark('oriel:video-codecs')),
  });
  // Marks for bench/display-browser.ts --breakdown: MAIN INIT in, each channel linked.
  void linked.then((s) => {
    performance.mark('oriel:main-init');
    s.onChannel((c) => performance.mark(`oriel:linked-${channelName(c.type)}`));
  }, () => undefined);
  return linked;
}

interface Early {
  promise: Promise<SpiceSession>;
  failed: boolean;
}
const early = new Map<string, Early>();

/** The console proxy path of a VM's SPICE console. */
export const spicePath = (vmName: string): string => `/api/vms/${encodeURIComponent(vmName)}/spice`;

/** Starts the session for `path` now; the console that mounts for the same path takes it over. */
export function preconnect(path: string): void {
  if (early.has(path)) return;
  const e: Early = { promise: openSession(path), failed: false };
  early.set(path, e);
  e.promise.then(
    (session) => {
      // Ended before anyone took it (the VM stopped, another client took over): not adoptable.
      session.onClose(() => {
        e.failed = true;
        if (early.get(path) === e) early.delete(path);
      });
      setTimeout(() => {
        if (early.get(path) !== e) return;
        early.delete(path);
        session.close();
      }, UNCLAIMED_MS);
    },
    () => {
      e.failed = true;
      if (early.get(path) === e) early.delete(path);
    },
  );
}

/** The session preconnect() started for `path` (linking or linked), once; undefined if none or it failed. */
export function takePreconnected(path: string): Promise<SpiceSession> | undefined {
  const e = early.get(path);
  early.delete(path);
  return e && !e.failed ? e.promise : undefined;
}
