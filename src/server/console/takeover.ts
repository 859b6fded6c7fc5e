// One SPICE client per VM, handed over cleanly. spice-server (QEMU 7.2, spice-server 0.15) lets one client in at a
// time: a new main channel makes it drop the previous client while the new one links. Its display worker was seen
// to crash there (SIGSEGV: a channel client used after it was freed; `SPICE Worker ... segfault` in the kernel log)
// when the two overlapped: a console page left or replaced while another opened, and pages taking the console back
// from each other. So the proxy hands over itself: a new session's main link first closes every upstream
// connection of the previous session (their WebSockets close with CONSOLE_TAKEN_OVER, and the page they served
// does not reconnect on its own), then waits until QEMU lists no SPICE channel (query-spice), and only then dials
// QEMU. Hand-overs of one VM run one after another.
// The other channels of a session (display, inputs, …) dial QEMU only while their session is the VM's current one
// (`admits`: its id, read from the main channel's MAIN_INIT, link-sniff.ts). A late channel of a session that was
// just replaced (a page left or reloaded while its channels linked) is refused: dialled during a hand-over it kept
// QEMU listing a channel the hand-over had not closed, so the new session waited the whole DRAIN_MS, and it
// reached spice-server in the middle of the new client's link.
import { setTimeout as sleep } from 'node:timers/promises';
import { CONSOLE_TAKEN_OVER } from '../../api/console-close.ts';
/** How long a hand-over waits for QEMU to let the previous client go before dialling anyway. */
const DRAIN_MS = 3_000;

type Close = (code: number, reason: string) => void;
/** What the hand-over needs of the VM's QMP: `query-spice`. Undefined when QMP cannot be reached. */
export type SpiceQuery = () => Promise<{ channels?: unknown[] }> | undefined;

export class ConsoleTakeover {
  private readonly live = new Map<string, Set<Close>>();
  private readonly queue = new Map<string, Promise<void>>();
  /** Per VM: the current session's id; null while a hand-over runs or its main channel has not told it yet;
   * 'any' when it could not be read (then every channel is let through, as before). */
  private readonly current = new Map<string, number | null | 'any'>();
  /** Channels (other than main) with an upstream connection, per VM: `${vmId}/${type}:${id}`. */
  private readonly channels = new Map<string, object>();

  /** Records one upstream connection of VM `vmId`; the returned function forgets it (once it closes). */
  register(vmId: string, close: Close): () => void {
    let set = this.live.get(vmId);
    if (!set) this.live.set(vmId, (set = new Set()));
    set.add(close);
    return () => {
      set.delete(close);
      if (set.size === 0 && this.live.get(vmId) === set) this.live.delete(vmId);
    };
  }

  /** Before a new session's main channel dials QEMU: ends the previous session and waits until QEMU let it go. */
  handOver(vmId: string, query: SpiceQuery): Promise<void> {
    const prev = this.queue.get(vmId) ?? Promise.resolve();
    const run = prev.then(() => this.drain(vmId, query));
    const tail = run.catch(() => undefined);
    this.queue.set(vmId, tail);
    void tail.then(() => { if (this.queue.get(vmId) === tail) this.queue.delete(vmId); });
    return run;
  }

  /**
   * Claims channel `type`:`id` of the VM's current session for one upstream connection; undefined if one is open
   * already. spice-server 0.15 takes a second link of a channel a client has (a display:0 twice) and its display
   * worker was seen to crash when one of them closed. The returned function releases the claim (once).
   */
  claimChannel(vmId: string, type: number, id: number): (() => void) | undefined {
    const key = `${vmId}/${type}:${id}`;
    if (this.channels.has(key)) return undefined;
    const token = {};
    this.channels.set(key, token);
    return () => {
      if (this.channels.get(key) === token) this.channels.delete(key);
    };
  }

  /** The session id the main channel of the VM's newest session told (undefined: it could not be read). */
  setSession(vmId: string, id: number | undefined): void {
    this.current.set(vmId, id ?? 'any');
  }

  /** Whether a channel of session `connectionId` may dial QEMU now: the VM's current session, linked. */
  admits(vmId: string, connectionId: number): boolean {
    const cur = this.current.get(vmId);
    return cur === undefined || cur === 'any' || cur === connectionId;
  }

  private async drain(vmId: string, query: SpiceQuery): Promise<void> {
    this.current.set(vmId, null);
    for (const close of [...(this.live.get(vmId) ?? [])]) close(CONSOLE_TAKEN_OVER, 'another console took over this VM');
    const end = Date.now() + DRAIN_MS;
    for (;;) {
      let channels: unknown[] | undefined;
      try {
        channels = (await query())?.channels;
      } catch {
        return; // QMP busy or gone: the dial reports what is wrong
      }
      if (!channels || channels.length === 0 || Date.now() > end) return;
      await sleep(20);
    }
  }
}
