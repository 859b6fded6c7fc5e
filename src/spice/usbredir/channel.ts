// The SPICE usbredir channel (type 9, a spicevmc channel): one per QEMU `usb-redir` port. SPICEVMC_DATA (101) carries
// the usbredir byte stream both ways; this client plays usbredir's usb-host (host.ts) and the QEMU port is the
// usb-guest. QEMU says hello as soon as the channel links. A malformed usbredir packet stops this channel with
// UsbredirProtocolError (the session reports it on onChannelError); the other channels go on.
import { SpiceChannel } from '../channel.ts';
import { nextEvent } from '../emitter.ts';
import { startTimer } from '../timers.ts';
import type { UsbDevice } from './device.ts';
import { UsbredirHost } from './host.ts';

const Msg = { DATA: 101, COMPRESSED_DATA: 102 } as const;
const Msgc = { DATA: 101 } as const;
/** Our DATA messages stay at 64 KiB, as spice-gtk's. */
const CHUNK = 65536;

/** No LZ4 (SPICEVMC cap 0): QEMU's usbredir stream is sent as it is. */
export const USBREDIR_CLIENT_CAPS: number[] = [];

export class UsbredirChannel extends SpiceChannel {
  private _host: UsbredirHost | undefined;

  get host(): UsbredirHost {
    this._host ??= new UsbredirHost((b) => {
      for (let at = 0; at < b.length; at += CHUNK) this.send(Msgc.DATA, b.subarray(at, at + CHUNK));
    });
    return this._host;
  }

  get device(): UsbDevice | undefined {
    return this._host?.device;
  }

  /** Resolves once the guest side said hello (QEMU does right after the link). */
  async whenReady(timeoutMs = 10_000): Promise<void> {
    if (this.host.helloReceived) return;
    if (this.closed) throw new Error(`${this.label}: closed`);
    let stop = () => {};
    const timeout = new Promise<never>((_, reject) => {
      stop = startTimer(timeoutMs, () => reject(new Error(`${this.label}: no usbredir hello within ${timeoutMs} ms`)));
    });
    const closed = new Promise<never>((_, reject) =>
      this.onClose((e) => reject(e ?? new Error(`${this.label}: closed before the usbredir hello`))));
    try {
      await Promise.race([nextEvent(this.host.onHello), timeout, closed]);
    } finally {
      stop();
    }
  }

  /** Plugs `device` into this port (waits for the hello first). */
  async attach(device: UsbDevice, timeoutMs?: number): Promise<void> {
    await this.whenReady(timeoutMs);
    this.host.attach(device);
  }

  /** Unplugs the device; the channel stays linked for another one. */
  async detach(): Promise<void> {
    await this._host?.detach();
  }

  protected override onLinked(): void {
    void this.host; // our hello goes out at once
  }

  protected handleMessage(type: number, body: Uint8Array): void {
    switch (type) {
      case Msg.DATA:
        this.host.receive(body); // throws UsbredirProtocolError: run() closes this channel with it
        return;
      default:
        // COMPRESSED_DATA is only sent to clients announcing LZ4, which this one does not.
        this.ignore(type);
    }
  }

  protected override onClosed(): void {
    void this._host?.closed();
  }
}
