// A fake transport for one channel: the test pushes server bytes and reads what the client wrote.
import { ByteQueue, type Transport } from '../../../src/spice/transport.ts';
import { Writer } from '../../../src/spice/proto/writer.ts';

export class FakeWire {
  readonly queue = new ByteQueue();
  readonly written: Uint8Array[] = [];
  closed = false;
  readonly transport: Transport = {
    start: () => {},
    write: (b) => this.written.push(b.slice()),
    close: () => {
      this.closed = true;
    },
  };

  /** Pushes one server message with a mini header. */
  push(type: number, body: Uint8Array = new Uint8Array(0)): void {
    this.queue.data(miniMessage(type, body));
  }

  /** Client messages as [type, body] pairs (assuming whole messages per write, as the core does). */
  messages(): [number, Uint8Array][] {
    return this.written.map((b) => [b[0]! | (b[1]! << 8), b.subarray(6)]);
  }
}

export function miniMessage(type: number, body: Uint8Array): Uint8Array {
  return new Writer(6 + body.length).u16(type).u32(body.length).bytes(body).finish();
}

/** Lets queued promise callbacks run. */
export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
