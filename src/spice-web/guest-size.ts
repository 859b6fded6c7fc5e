// "Resize guest to window" (scale mode 'remote'): the console area's size is asked of the guest whenever it changes
// (through the core's ConsoleController, which rounds as the agent sends it and asks once per size), and the guest's
// screen is then shown 1:1 (screen.ts). With several monitors the area is shared between them, side by side: the
// guest's heads are regions of its one screen, so the canvas shows them side by side as they are.
import type { ConsoleController, MonitorHead } from '../spice/index.ts';

/** Smaller than this the area is hidden or being laid out: nothing is asked. */
const MIN_AREA = 64;

/** A monitor's size when the guest has none to copy. */
const DEFAULT_HEAD = { width: 1024, height: 768 };

/** Asks the guest for the area's size (shared by `count` monitors); true when asked (an agent is ready, it is new). */
export function askGuestSize(
  controller: ConsoleController | undefined,
  area: { width: number; height: number },
  count = 1,
): boolean {
  if (!controller || area.width < MIN_AREA * count || area.height < MIN_AREA) return false;
  const head = { width: Math.floor(area.width / count), height: area.height };
  return controller.requestMonitors(Array.from({ length: count }, () => head));
}

/**
 * Outside 'remote': asks for `count` monitors, each the size of the guest's first one, unless it shows that many;
 * true when asked.
 */
export function askMonitors(
  controller: ConsoleController | undefined,
  heads: readonly MonitorHead[],
  count: number,
): boolean {
  if (!controller || heads.length === count || (!heads.length && count === 1)) return false;
  const head = heads[0] ? { width: heads[0].width, height: heads[0].height } : DEFAULT_HEAD;
  return controller.requestMonitors(Array.from({ length: count }, () => head));
}
