// The console controller: what a SPICE console does beyond drawing and capturing input, written once for every host
// (the browser console in src/spice-web, the headless client behind `oriel console` in src/cli): typing text and
// key combinations (typing.ts), the switch to client (absolute) mouse mode, asking the guest for a screen size, and
// "picture complete" (picture.ts). One controller serves one session; a host that reconnects makes a new one.
import type { DisplayChannel, MonitorHead } from '../channels/display.ts';
import type { InputsChannel } from '../channels/inputs.ts';
import type { MouseModeEvent } from '../channels/main.ts';
import { monitorSize } from '../vdagent/agent.ts';
import type { MonitorConfig } from '../vdagent/protocol.ts';
import { Emitter, nextEvent, type Disposable, type Event } from '../emitter.ts';
import { ChannelType, MouseMode } from '../proto/constants.ts';
import type { SpiceSession } from '../session.ts';
import { startTimer } from '../timers.ts';
import { describeHeads, headImage, headsMatch, sideBySide, type HeadSize } from './monitors.ts';
import { completePicture, type CompletePicture, type PictureOptions } from './picture.ts';
import { checkTypeable, typeText, type TypeOptions } from './typing.ts';

/** What the controller needs of a session (a SpiceSession; tests pass channels over fake wires). */
export type ConsoleSession = Pick<SpiceSession, 'main' | 'agent' | 'inputs' | 'display' | 'whenChannel'>;

/** client: absolute positions (a USB tablet or the agent in the guest); server: relative motion. */
export type MouseModeName = 'client' | 'server';

export interface ConsoleControllerOptions {
  /**
   * Switch to client mouse mode whenever the server offers it (the browser: no pointer lock, the local cursor is
   * exact). Off for the command line, whose relative motion (`--by`) must stay relative.
   */
  preferClientMouse?: boolean;
  /** Pause after each typed character (default TYPE_PAUSE_MS). */
  typePauseMs?: number;
}

export interface Size {
  width: number;
  height: number;
}

export class ConsoleController {
  /** Keys pressed (typed characters count one each) and screen sizes asked of the guest. */
  readonly stats = { keys: 0, resizeRequests: 0 };
  private readonly _onMouseMode = new Emitter<MouseModeName>();
  /** The server's mouse mode, told at once if known and then on every MOUSE_MODE. */
  readonly onMouseMode: Event<MouseModeName> = this._onMouseMode.event;
  private _requested: MonitorConfig[] | undefined;
  private readonly _subs: Disposable[];

  constructor(
    readonly session: ConsoleSession,
    private readonly _o: ConsoleControllerOptions = {},
  ) {
    this._subs = [
      session.main.onMouseMode((m) => this._mouseModeChanged(m)),
      // A new agent (a guest that restarted it) has not been asked for anything yet.
      session.agent.onState((st) => { if (st === 'ready') this._requested = undefined; }),
    ];
    const mm = session.main.mouseMode;
    if (mm) this._mouseModeChanged(mm);
  }

  get mouseMode(): MouseModeName {
    return this.session.main.mouseMode?.current === MouseMode.CLIENT ? 'client' : 'server';
  }

  /** The inputs channel, once linked. */
  async keyboard(): Promise<InputsChannel> {
    return this.session.inputs ?? this.session.whenChannel<InputsChannel>(ChannelType.INPUTS);
  }

  /**
   * Types `text` on a US layout, paced for the guest; resolves with the characters typed. Refuses text with a
   * character that layout has no key for (SpiceInputError, before anything is sent or waited for): every host
   * refuses the same characters.
   */
  async typeText(text: string, o: Omit<TypeOptions, 'pauseMs'> = {}): Promise<number> {
    checkTypeable(text);
    return typeText(await this.keyboard(), text, {
      pauseMs: this._o.typePauseMs,
      onStroke: () => {
        this.stats.keys++;
        o.onStroke?.();
      },
    });
  }

  /** Presses keys (KeyboardEvent.code values) in order and releases them in reverse; SpiceInputError if unknown. */
  async pressKeys(codes: readonly string[]): Promise<void> {
    (await this.keyboard()).pressKeys(codes);
    this.stats.keys += codes.length;
  }

  /**
   * Switches to client (absolute) mouse mode. The server offers it only with a USB tablet or the agent in the guest,
   * which may connect a little later: waits up to `waitMs` for the offer. False when there is none.
   */
  async clientMouse(waitMs = 2000): Promise<boolean> {
    const main = this.session.main;
    const offered = () => ((main.mouseMode?.supported ?? 0) & MouseMode.CLIENT) !== 0;
    if (!offered() && !(await this._within(waitMs, nextEvent(main.onMouseMode, offered)))) return false;
    if (this.mouseMode === 'client') return true;
    const switched = nextEvent(this.onMouseMode, (m) => m === 'client');
    main.requestMouseMode(MouseMode.CLIENT);
    return (await this._within(waitMs, switched)) !== undefined;
  }

  /** The size last asked of the guest for its first monitor (rounded as the agent sends it), until the agent is new. */
  get requestedSize(): Size | undefined {
    const r = this._requested?.[0];
    return r && { width: r.width, height: r.height };
  }

  /** The monitors last asked of the guest (side by side), until the agent is new. */
  get requestedMonitors(): readonly MonitorConfig[] | undefined {
    return this._requested;
  }

  /** Lets the next requestSize ask again even for the same size (the host's choice changed). */
  forgetRequestedSize(): void {
    this._requested = undefined;
  }

  /**
   * Asks the guest (through its agent, which debounces) for a screen of `width`×`height`, unless that is what was
   * asked last. False when not asked: no ready agent, or the same size.
   */
  requestSize(width: number, height: number): boolean {
    return this.requestMonitors([{ width, height }]);
  }

  /**
   * Asks the guest for monitors of these sizes side by side (monitors.ts sideBySide; the first is the primary one),
   * unless that is what was asked last. False when not asked: no ready agent, or the same layout.
   */
  requestMonitors(sizes: readonly HeadSize[]): boolean {
    const agent = this.session.agent;
    if (agent.state !== 'ready') return false;
    const want = sideBySide(sizes);
    const r = this._requested;
    if (r && headsMatch(r, want)) return false;
    this._requested = want;
    this.stats.resizeRequests++;
    agent.setMonitors(want);
    return true;
  }

  /**
   * Asks for monitors of these sizes side by side and resolves with the guest's heads once its MONITORS_CONFIG lists
   * exactly them (`changed` false when it already did). Needs a guest with that many outputs (Oriel's qxl VMs have
   * two) whose desktop applies the layout. Rejects when the agent is not ready within `timeoutMs`, or the guest did
   * not switch in time.
   */
  async arrangeMonitors(
    sizes: readonly HeadSize[], timeoutMs: number,
  ): Promise<{ heads: MonitorHead[]; changed: boolean }> {
    const want = sideBySide(sizes);
    await this.session.agent.whenReady(timeoutMs);
    const display = await this.session.whenChannel<DisplayChannel>(ChannelType.DISPLAY);
    if (!display.primary) await nextEvent(display.onSurfaceCreated, (i) => i.primary);
    const changed = !headsMatch(display.heads, want);
    if (changed) {
      const shown = nextEvent(display.onMonitorsConfig, (h) => headsMatch(h, want));
      this.forgetRequestedSize();
      this.requestMonitors(sizes);
      if (!(await this._within(Math.max(5000, timeoutMs - 2000), shown)))
        throw new Error(
          `the guest did not switch to ${describeHeads(want)} ` +
            `(it shows ${describeHeads(display.heads) || 'no monitors config'}); does it have ${want.length} outputs?`,
        );
    }
    return { heads: [...display.heads], changed };
  }

  /**
   * Asks for a screen size and resolves once the primary surface has it (the guest rounds the width down to a
   * multiple of 8). `changed` is false when the screen already had that size. Rejects when the agent is not ready
   * within `timeoutMs`, or the guest did not switch in time.
   */
  async resizeTo(width: number, height: number, timeoutMs: number): Promise<Size & { changed: boolean }> {
    await this.session.agent.whenReady(timeoutMs);
    const display = await this.session.whenChannel<DisplayChannel>(ChannelType.DISPLAY);
    // Compare with the size the guest shows, not with no picture yet.
    if (!display.primary) await nextEvent(display.onSurfaceCreated, (i) => i.primary);
    // A new client's monitors config comes before the first mark (spice-server's dcc_start): until then `heads`
    // would say one display where the guest shows two.
    if (!display.marked) await this._within(2000, nextEvent(display.onMark));
    const want = monitorSize(width, height);
    const current = () => display.primary!.info;
    const matches = () =>
      current().width === want.width && current().height === want.height && display.heads.length <= 1;
    const changed = !matches();
    if (changed) {
      const created = Promise.race([
        nextEvent(display.onSurfaceCreated, (i) => i.primary && i.width === want.width && i.height === want.height),
        // From two heads to one as large as their surface already is: the guest drops a head, keeps the surface.
        nextEvent(display.onMonitorsConfig, () => matches()),
      ]);
      this.forgetRequestedSize();
      this.requestSize(width, height);
      if (!(await this._within(Math.max(5000, timeoutMs - 2000), created)))
        throw new Error(
          `the guest did not switch to ${want.width}×${want.height} (it shows ${current().width}×${current().height}); ` +
            'is its agent applying display changes?',
        );
    }
    return { width: current().width, height: current().height, changed };
  }

  /** The primary surface once its picture is complete (DISPLAY_MARK, or a settle without one): picture.ts. */
  completePicture(o?: PictureOptions): Promise<CompletePicture> {
    return completePicture(this.session, o);
  }

  /**
   * Monitor `head`'s picture: the primary surface once complete (completePicture), cut to that head's region as the
   * display's MONITORS_CONFIG places it (with no monitors config, head 0 is the whole surface). Waits `headWaitMs`
   * for a config listing the head (it follows the picture a new client gets); rejects if the guest has no such head.
   */
  async headPicture(head: number, o: PictureOptions & { headWaitMs?: number } = {}): Promise<CompletePicture & {
    head: MonitorHead | undefined;
  }> {
    const pic = await this.completePicture(o);
    const display = this.session.display!;
    const listed = () => display.heads.find((h) => h.monitorId === head);
    if (!listed() && (head > 0 || display.heads.length))
      await this._within(o.headWaitMs ?? 2000, nextEvent(display.onMonitorsConfig, () => listed() !== undefined));
    const h = listed();
    if (!h) {
      if (head === 0 && !display.heads.length) return { ...pic, head: undefined };
      const ids = display.heads.map((x) => x.monitorId);
      throw new Error(`no display ${head}: the guest shows ${ids.length ? `display ${ids.join(', ')}` : 'one display'}`);
    }
    const image = headImage(pic.image, h);
    if (!image.width || !image.height) throw new Error(`display ${head} is empty or outside the screen`);
    return { ...pic, image, head: h };
  }

  dispose(): void {
    for (const s of this._subs.splice(0)) s.dispose();
    this._onMouseMode.dispose();
  }

  private _mouseModeChanged(m: MouseModeEvent): void {
    // Absolute is better whenever the guest can take it: no pointer lock, the local cursor is exact.
    if (this._o.preferClientMouse && m.current !== MouseMode.CLIENT && m.supported & MouseMode.CLIENT)
      this.session.main.requestMouseMode(MouseMode.CLIENT);
    this._onMouseMode.fire(this.mouseMode);
  }

  /** `p`'s value, or undefined when it has not settled within `ms` (the bound is stopped either way). */
  private async _within<T>(ms: number, p: Promise<T>): Promise<T | undefined> {
    let stop = (): void => undefined;
    const bound = new Promise<undefined>((resolve) => (stop = startTimer(ms, () => resolve(undefined))));
    try {
      return await Promise.race([p, bound]);
    } finally {
      stop();
    }
  }
}
