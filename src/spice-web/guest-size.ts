// "Resize guest to window" (scale mode 'remote'): the console area's size is asked of the guest whenever it changes
// (through the core's ConsoleController, which rounds as the agent sends it and asks once per size), and the guest's
// screen is then shown 1:1 (screen.ts).
import type { ConsoleController } from '../spice/index.ts';

/** Smaller than this the area is hidden or being laid out: nothing is asked. */
const MIN_AREA = 64;

/** Asks the guest for the area's size; true when asked (an agent is ready and the size is new). */
export function askGuestSize(
  controller: ConsoleController | undefined,
  area: { width: number; height: number },
): boolean {
  if (!controller || area.width < MIN_AREA || area.height < MIN_AREA) return false;
  return controller.requestSize(area.width, area.height);
}
