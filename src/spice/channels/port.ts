// Port channels (type 10 PORT, 11 WEBDAV; spice.proto `channel SpicevmcChannel` and `channel PortChannel`,
// docs/spice-protocol.md §3.10): a byte pipe between the client and a named QEMU chardev
// (`-chardev spiceport,name=…`) that a guest program opens as /dev/virtio-ports/NAME. The server gives the port
// named org.spice-space.webdav.0 the type WEBDAV. Data goes both ways as SPICEVMC_DATA; the server tells the port's
// name and whether the guest has it open. Compressed data is never sent: this client does not announce SPICEVMC's
// LZ4 capability.
import { SpiceChannel } from '../channel.ts';
import { Emitter, type Event } from '../emitter.ts';
import { decodeUtf8 } from '../proto/utf8.ts';
import { Writer } from '../proto/writer.ts';

const Msg = { DATA: 101, COMPRESSED_DATA: 102, PORT_INIT: 201, PORT_EVENT: 202 } as const;
const Msgc = { DATA: 101, PORT_EVENT: 201 } as const;
export const PortEvent = { OPENED: 0, CLOSED: 1, BREAK: 2 } as const;

export const PORT_CLIENT_CAPS: number[] = [];

export class PortChannel extends SpiceChannel {
  private readonly _onData = new Emitter<Uint8Array>();
  /** Bytes the guest wrote to the port. */
  readonly onData: Event<Uint8Array> = this._onData.event;
  private readonly _onOpened = new Emitter<boolean>();
  /** The guest opened (true) or closed (false) its end. */
  readonly onOpened: Event<boolean> = this._onOpened.event;

  name: string | undefined;
  opened = false;
  /** Bytes sent to the guest so far. */
  sent = 0;

  /** Writes bytes to the guest's end, in messages of at most 64 KiB. */
  write(data: Uint8Array): void {
    for (let at = 0; at < data.length; at += 65536) {
      const part = data.subarray(at, at + 65536);
      this.send(Msgc.DATA, part);
      this.sent += part.length;
    }
  }

  /** Tells the server the client opened or closed its end (PORT_EVENT). */
  event(ev: number): void {
    this.send(Msgc.PORT_EVENT, new Writer(1).u8(ev).finish());
  }

  protected handleMessage(type: number, body: Uint8Array): void {
    const r = this.reader(body, type);
    switch (type) {
      case Msg.DATA:
        this._onData.fire(body);
        return;
      case Msg.PORT_INIT: {
        const size = r.u32();
        const ptr = r.u32();
        const opened = r.u8() !== 0;
        const name = r.at(ptr).bytesView(Math.min(size, body.length - ptr));
        this.name = decodeUtf8(name).replace(/\0+$/, '');
        this._setOpened(opened);
        return;
      }
      case Msg.PORT_EVENT: {
        const ev = r.u8();
        if (ev === PortEvent.OPENED) this._setOpened(true);
        else if (ev === PortEvent.CLOSED) this._setOpened(false);
        return;
      }
      default:
        this.ignore(type);
    }
  }

  private _setOpened(v: boolean): void {
    this.opened = v;
    this._onOpened.fire(v);
  }

  protected override onClosed(): void {
    this._onData.dispose();
    this._onOpened.dispose();
  }
}
