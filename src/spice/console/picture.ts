// "Picture complete": when the display channel has drawn the whole screen. Normally the server says so with a MARK
// (DISPLAY_MARK) after the screen it sends a new client; without one (older servers, or after a resize, whose MARK
// comes before the new picture is drawn) a short settle: a quiet display, bounded. Used by the headless screenshot
// (`oriel console screenshot`) and available to every host.
import type { DisplayChannel } from '../channels/display.ts';
import type { RgbaImage } from '../codecs/types.ts';
import type { Disposable } from '../emitter.ts';
import { ChannelType } from '../proto/constants.ts';
import type { SpiceSession } from '../session.ts';
import { RgbaSurface } from '../surface.ts';
import { startInterval, startTimer } from '../timers.ts';

/** The primary surface of display 0 as an RgbaSurface, if one exists. */
export function primarySurface(session: Pick<SpiceSession, 'display'>): RgbaSurface | undefined {
  const s = session.display?.primary?.surface;
  return s instanceof RgbaSurface ? s : undefined;
}

/** How a picture was judged complete (`completePicture`). */
export type PictureCompletion =
  /** The server's MARK: it sent the whole screen (the normal case, right after connecting). */
  | 'mark'
  /** No MARK came (or was not waited for): nothing was drawn for the quiet period. */
  | 'quiet'
  /** No MARK, and the guest kept drawing until the bound: the picture as it was then. */
  | 'bounded';

export interface CompletePicture {
  /** A copy of the primary surface, taken at completion (or what `take` returned). */
  image: RgbaImage;
  completedBy: PictureCompletion;
  /** Milliseconds from the call to completion. */
  ms: number;
}

export interface PictureOptions {
  /** An error after this long without a primary surface (no display channel, no picture). */
  timeoutMs?: number;
  /** Wait for the server's MARK (false: after a resize, whose MARK comes before the new picture is drawn). */
  mark?: boolean;
  /** With a primary surface but no MARK for this long, fall back to waiting for a quiet display. */
  markWaitMs?: number;
  /** The fallback: no drawing for this long … */
  quietMs?: number;
  /** … or, if the guest keeps drawing, take the picture after this long in the fallback. */
  settleMs?: number;
  /**
   * What to keep of the live primary surface at completion; default: a copy of its pixels. It runs in the same turn
   * as the completion (inside the MARK event), before anything else is drawn: a `take` that encodes the picture at
   * once needs no copy of the screen.
   */
  take?: (surface: RgbaImage) => RgbaImage;
}

/**
 * The primary surface of display 0 once its picture is complete: normally at the server's MARK, which follows the
 * whole screen sent to a new client (every draw before it already applied: the display channel handles messages in
 * order and decodes synchronously, and the copy is taken inside the MARK event). Without a MARK (older servers, or
 * `mark: false`), a short settle: a quiet display or `settleMs`. Rejects after `timeoutMs` without a picture.
 * Every timer it starts is stopped when it settles: a pending bound never keeps a process alive.
 */
export async function completePicture(
  session: Pick<SpiceSession, 'display' | 'whenChannel'>,
  o: PictureOptions = {},
): Promise<CompletePicture> {
  const { timeoutMs = 15_000, mark = true, markWaitMs = 2000, quietMs = 300, settleMs = 2000 } = o;
  const take = o.take ?? ((s: RgbaImage) => ({ width: s.width, height: s.height, data: s.data.slice() }));
  const t0 = Date.now();
  const copy = (completedBy: PictureCompletion): CompletePicture | undefined => {
    const s = primarySurface(session);
    return s && { image: take({ width: s.width, height: s.height, data: s.data }), completedBy, ms: Date.now() - t0 };
  };
  let stopBound = (): void => undefined;
  const display = await Promise.race([
    session.whenChannel<DisplayChannel>(ChannelType.DISPLAY),
    new Promise<undefined>((resolve) => (stopBound = startTimer(timeoutMs, () => resolve(undefined)))),
  ]).finally(() => stopBound());
  if (!display) throw new Error(`no display channel within ${timeoutMs} ms`);
  if (mark && display.marked) return copy('mark')!;
  return new Promise<CompletePicture>((resolve, reject) => {
    let lastDraw = Date.now();
    /** When the fallback started (a primary surface and no MARK after markWaitMs, or not waiting for one). */
    let settling: number | undefined;
    let firstPicture: number | undefined;
    const subs: Disposable[] = [
      display.onInvalidate(() => (lastDraw = Date.now())),
      display.onMark(() => {
        if (mark && display.marked) done(copy('mark'));
      }),
      display.onClose((e) =>
        fail(new Error(`the display channel closed before the picture was complete${e ? `: ${e.message}` : ''}`))),
    ];
    const stop = startInterval(25, () => {
      const now = Date.now();
      if (!primarySurface(session)) {
        if (now - t0 >= timeoutMs) fail(new Error(`no picture from the display within ${timeoutMs} ms`));
        return;
      }
      firstPicture ??= now;
      if (settling === undefined && (!mark || now - firstPicture >= markWaitMs)) settling = now;
      if (settling === undefined) return;
      if (now - lastDraw >= quietMs) done(copy('quiet'));
      else if (now - settling >= settleMs) done(copy('bounded'));
    });
    const cleanup = () => {
      stop();
      for (const s of subs) s.dispose();
    };
    function done(p: CompletePicture | undefined) {
      if (!p) return;
      cleanup();
      resolve(p);
    }
    function fail(e: Error) {
      cleanup();
      reject(e);
    }
  });
}
