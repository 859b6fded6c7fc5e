// Records the bytes each channel receives, to capture real server traffic as fixtures
// (test/fixtures/spice/<scenario>/) and to replay it through the core without a server.
import type { Connector, Transport, TransportHandler } from '../../../src/spice/index.ts';
import { channelName } from '../../../src/spice/proto/constants.ts';

export class Recorder {
  readonly received = new Map<string, Uint8Array[]>();

  wrap(inner: Connector): Connector {
    return async (type, id) => {
      const t = await inner(type, id);
      const chunks: Uint8Array[] = [];
      this.received.set(`${channelName(type)}:${id}`, chunks);
      const wrapped: Transport = {
        start: (h: TransportHandler) =>
          t.start({
            data: (c) => {
              chunks.push(c.slice());
              h.data(c);
            },
            closed: (e) => h.closed(e),
          }),
        write: (b) => t.write(b),
        close: () => t.close(),
      };
      return wrapped;
    };
  }

  /** All bytes a channel received after its link (SpiceLinkHeader + reply + u32 link result). */
  afterLink(label: string): Uint8Array {
    const all = concat(this.received.get(label) ?? []);
    const size = new DataView(all.buffer, all.byteOffset).getUint32(12, true);
    return all.slice(16 + size + 4);
  }
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
