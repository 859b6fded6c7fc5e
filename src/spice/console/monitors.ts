// Several monitors on one display channel (qxl with several outputs): the guest's heads are regions of one primary
// surface, listed by the display channel's MONITORS_CONFIG (`DisplayChannel.heads`). A client asks for a layout
// through the agent's monitors config; here the side-by-side layout every host asks for, the comparison that tells
// when the guest shows it, and a head's picture cut out of the surface's.
import type { MonitorHead } from '../channels/display.ts';
import type { RgbaImage } from '../codecs/types.ts';
import { monitorSize } from '../vdagent/agent.ts';
import type { MonitorConfig } from '../vdagent/protocol.ts';

export interface HeadSize {
  width: number;
  height: number;
}

/** Most heads a client asks for (QEMU's qxl allows 16; Oriel's VMs have two, qemu-args.ts QXL_HEADS). */
export const MAX_HEADS = 16;

/** The monitors for these sizes, left to right from 0,0, each rounded as the agent sends it (monitorSize). */
export function sideBySide(sizes: readonly HeadSize[]): Required<Pick<MonitorConfig, 'width' | 'height' | 'x' | 'y'>>[] {
  if (!sizes.length || sizes.length > MAX_HEADS) throw new RangeError(`1 to ${MAX_HEADS} monitors, not ${sizes.length}`);
  let x = 0;
  return sizes.map((s) => {
    const m = { ...monitorSize(s.width, s.height), x, y: 0 };
    x += m.width;
    return m;
  });
}

/** Whether two layouts (the guest's heads, monitors asked for) are the same: count, sizes and places. */
export function headsMatch(heads: readonly MonitorConfig[], want: readonly MonitorConfig[]): boolean {
  return heads.length === want.length && want.every((w, i) => {
    const h = heads[i];
    return h.width === w.width && h.height === w.height && (h.x ?? 0) === (w.x ?? 0) && (h.y ?? 0) === (w.y ?? 0);
  });
}

/** "1024×768 at 0,0; 800×600 at 1024,0" */
export function describeHeads(heads: readonly MonitorConfig[]): string {
  return heads.map((h) => `${h.width}×${h.height} at ${h.x ?? 0},${h.y ?? 0}`).join('; ');
}

/** Head `head`'s region of a picture of its surface (clipped to the picture), as a new image. */
export function headImage(image: RgbaImage, head: Pick<MonitorHead, 'x' | 'y' | 'width' | 'height'>): RgbaImage {
  const x0 = Math.min(head.x, image.width);
  const y0 = Math.min(head.y, image.height);
  const width = Math.min(head.width, image.width - x0);
  const height = Math.min(head.height, image.height - y0);
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    const from = ((y0 + y) * image.width + x0) * 4;
    data.set(image.data.subarray(from, from + width * 4), y * width * 4);
  }
  return { width, height, data };
}
