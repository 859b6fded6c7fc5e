// Feeds recorded post-link bytes into a display channel over a fake transport: only the transport
// seam is faked; framing, decoding and surfaces are the real ones.
import { DisplayChannel, type SurfaceInfo } from '../../../src/spice/channels/display.ts';
import type { ImageCaches } from '../../../src/spice/channels/display-images.ts';
import { GlzWindow } from '../../../src/spice/codecs/glz.ts';
import { RgbaSurface, SpiceConnectionClosed } from '../../../src/spice/index.ts';
import { ChannelType } from '../../../src/spice/proto/constants.ts';
import { ByteQueue, type Transport } from '../../../src/spice/transport.ts';

export interface Replay {
  display: DisplayChannel;
  caches: ImageCaches;
  written: Uint8Array[];
  error: Error | undefined;
}

/** Replays `bytes` in chunks of `chunk` bytes; resolves when the channel has consumed everything. */
export async function replayDisplay(
  bytes: Uint8Array,
  chunk = 4096,
  maxMessageSize = 64 << 20,
  serverCaps: number[] = [],
): Promise<Replay> {
  const written: Uint8Array[] = [];
  const transport: Transport = { start: () => {}, write: (b) => written.push(b), close: () => {} };
  const queue = new ByteQueue();
  const caches: ImageCaches = { pixmaps: new Map(), palettes: new Map(), glz: new GlzWindow(8 << 20) };
  const display = new DisplayChannel(
    ChannelType.DISPLAY,
    0,
    transport,
    queue,
    { maxMessageSize, lookup: () => undefined },
    {
      caches,
      createSurface: (i: SurfaceInfo) => new RgbaSurface(i.width, i.height),
      pixmapCacheSize: 20 << 20,
      glzWindowSize: 4 << 20,
      maxImagePixels: 16 << 20,
      serverCaps,
      mmTime: () => 0,
    },
  );
  let error: Error | undefined;
  display.onClose((e) => (error = e));
  const done = display.run();
  for (let i = 0; i < bytes.length; i += chunk) queue.data(bytes.subarray(i, i + chunk));
  queue.closed();
  await done;
  return { display, caches, written, error: error instanceof SpiceConnectionClosed ? undefined : error };
}
