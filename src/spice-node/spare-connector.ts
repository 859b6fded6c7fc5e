// One connection opened ahead of need: while the main channel links, the next channel's connection (for Oriel's
// console WebSocket: a TCP connect and an HTTP upgrade, two round trips on a real link) is already being set up, so
// the display channel of a headless screenshot costs no round trip of its own before its link message. Only for
// connectors whose connections are interchangeable (the console WebSocket carries whichever channel links on it).
import type { Connector, Transport } from '../spice/index.ts';

export interface SpareConnector {
  connect: Connector;
  /** Closes the spare if no channel took it (call when the session ends). */
  dispose(): void;
}

/** `spares`: how many connections beyond the first are opened ahead (a screenshot needs one: the display). */
export function withSpares(connect: Connector, spares: number): SpareConnector {
  let left = spares;
  let spare: Promise<Transport> | undefined;
  let disposed = false;
  const prepare = () => {
    if (disposed || left <= 0) return;
    left--;
    spare = connect(0, 0);
    spare.catch(() => {}); // a failed spare is reported to the channel that takes it
  };
  return {
    connect: (type, id) => {
      const t = spare ?? connect(type, id);
      spare = undefined;
      prepare();
      return t;
    },
    dispose() {
      disposed = true;
      spare?.then((t) => t.close(), () => {});
      spare = undefined;
    },
  };
}
