// The usb-host end of usbredir (what usbredirhost does for libusb): hello exchange, plugging a UsbDevice in
// (interface_info, ep_info, device_connect), and answering the guest's requests in order — configuration and alt
// settings, control, bulk and interrupt transfers, resets, cancels, filters. Transport-agnostic: bytes in through
// `receive`, bytes out through the `send` callback (a SPICE usbredir channel in channel.ts).
import { Emitter, type Event } from '../emitter.ts';
import { pause } from '../timers.ts';
import {
  bytes, readBulk, readControl, readSmallData, writeBulk, writeControl, writeDeviceConnect, writeEpInfo, writeHello,
  writeInterfaceInfo, writeSmallData,
} from './codec.ts';
import type { UsbDevice } from './device.ts';
import { filterAllows, parseFilterRules, type FilterRule } from './filter.ts';
import { UsbredirParser } from './parser.ts';
import { HOST_CAPS, HOST_VERSION, UsbStatus, UsbredirType as T, type UsbredirPacket } from './protocol.ts';

export class UsbDeviceRefused extends Error {
  override readonly name = 'UsbDeviceRefused';
}

export class UsbredirHost {
  readonly parser = new UsbredirParser(HOST_CAPS);
  private readonly _onHello = new Emitter<string>();
  /** The guest side's hello arrived (its version string). */
  readonly onHello: Event<string> = this._onHello.event;
  private readonly _onRejected = new Emitter<void>();
  /** The guest refused the plugged device (filter_reject); it has been unplugged. */
  readonly onRejected: Event<void> = this._onRejected.event;

  device: UsbDevice | undefined;
  filter: FilterRule[] = [];
  /** Packets handled, by type name, for tests and traces. */
  readonly counts: Record<number, number> = {};
  private _queue: UsbredirPacket[] = [];
  private _running = false;
  private _closed = false;
  private _interruptLoops = new Map<number, { stop: boolean }>();
  private _nextInterruptId = 0n;

  constructor(private readonly _send: (bytes: Uint8Array) => void) {
    this._send(this.parser.frame(T.HELLO, 0, writeHello(HOST_VERSION, HOST_CAPS)));
  }

  get helloReceived(): boolean {
    return this.parser.peer !== undefined;
  }

  /** Bytes from the guest side. Throws UsbredirProtocolError on a malformed packet (the caller closes the pipe). */
  receive(chunk: Uint8Array): void {
    for (const p of this.parser.feed(chunk)) {
      this.counts[p.type] = (this.counts[p.type] ?? 0) + 1;
      if (p.type === T.HELLO) this._onHello.fire(this.parser.peer!.version);
      else if (p.type === T.CANCEL_DATA_PACKET) this._cancel(p.id);
      else if (p.type === T.FILTER_FILTER) {
        this.filter = parseFilterRules(String.fromCharCode(...p.data.subarray(0, 4096)));
      } else this._queue.push(p);
    }
    void this._pump();
  }

  /** Plugs a device in. Call after the hello arrived (whenHello). Throws UsbDeviceRefused if the filter says no. */
  attach(device: UsbDevice): void {
    if (!this.helloReceived) throw new Error('usbredir: attach before the guest said hello');
    if (this.device) throw new Error('usbredir: a device is already attached to this channel');
    if (this.filter.length && !filterAllows(this.filter, device.connectInfo, device.interfaces())) {
      const { vendorId: v, productId: p } = device.connectInfo;
      throw new UsbDeviceRefused(`the VM's USB filter refuses ${hex4(v)}:${hex4(p)}`);
    }
    this.device = device;
    this._sendDescriptors(0n);
    this._send(this.parser.frame(T.DEVICE_CONNECT, 0, writeDeviceConnect(device.connectInfo, this.parser)));
  }

  /** Unplugs the device (device_disconnect) and closes it. */
  async detach(): Promise<void> {
    const d = this.device;
    if (!d) return;
    this.device = undefined;
    for (const l of this._interruptLoops.values()) l.stop = true;
    this._interruptLoops.clear();
    if (!this._closed) this._send(this.parser.frame(T.DEVICE_DISCONNECT, 0, new Uint8Array(0)));
    await d.close();
  }

  /** The pipe closed: stop sending; the device is closed. */
  async closed(): Promise<void> {
    this._closed = true;
    this._queue = [];
    const d = this.device;
    this.device = undefined;
    for (const l of this._interruptLoops.values()) l.stop = true;
    await d?.close();
  }

  /** Resolves once every queued packet has been answered. */
  async idle(): Promise<void> {
    while (this._running || this._queue.length) await pause(1);
  }

  private _out(type: number, id: bigint, header: Uint8Array, data?: Uint8Array): void {
    if (!this._closed) this._send(this.parser.frame(type, id, header, data));
  }

  private _sendDescriptors(id: bigint): void {
    const d = this.device!;
    this._out(T.INTERFACE_INFO, id, writeInterfaceInfo(d.interfaces()));
    this._out(T.EP_INFO, id, writeEpInfo(d.endpoints(), this.parser));
  }

  private async _pump(): Promise<void> {
    if (this._running) return;
    this._running = true;
    try {
      while (this._queue.length && !this._closed) await this._handle(this._queue.shift()!);
    } finally {
      this._running = false;
    }
  }

  /** A cancel for a packet still queued answers it as cancelled; one being handled completes normally. */
  private _cancel(id: bigint): void {
    const at = this._queue.findIndex((p) => p.id === id && p.type >= T.CONTROL_PACKET);
    if (at < 0) return;
    const [p] = this._queue.splice(at, 1);
    this._replyData(p!, UsbStatus.CANCELLED, 0);
  }

  private _replyData(p: UsbredirPacket, status: number, length: number, data?: Uint8Array): void {
    if (p.type === T.CONTROL_PACKET) {
      this._out(p.type, p.id, writeControl({ ...readControl(p.header), status, length }), data);
    } else if (p.type === T.BULK_PACKET) {
      this._out(p.type, p.id, writeBulk({ ...readBulk(p.header, this.parser), status, length }, this.parser), data);
    } else if (p.type === T.INTERRUPT_PACKET || p.type === T.ISO_PACKET) {
      this._out(p.type, p.id, writeSmallData({ ...readSmallData(p.header), status, length }), data);
    }
  }

  private async _handle(p: UsbredirPacket): Promise<void> {
    const d = this.device;
    const h = p.header;
    switch (p.type) {
      case T.RESET:
        await d?.reset();
        return;
      case T.SET_CONFIGURATION: {
        const status = d ? await d.setConfiguration(h[0]!).catch(() => UsbStatus.IOERROR) : UsbStatus.IOERROR;
        if (d && this.device === d) this._sendDescriptors(p.id);
        this._out(T.CONFIGURATION_STATUS, p.id, bytes(status, d?.configuration ?? 0));
        return;
      }
      case T.GET_CONFIGURATION:
        this._out(T.CONFIGURATION_STATUS, p.id,
          bytes(d ? UsbStatus.SUCCESS : UsbStatus.IOERROR, d?.configuration ?? 0));
        return;
      case T.SET_ALT_SETTING: {
        const status = d ? await d.setAltSetting(h[0]!, h[1]!).catch(() => UsbStatus.IOERROR) : UsbStatus.IOERROR;
        if (d && this.device === d) this._sendDescriptors(p.id);
        this._out(T.ALT_SETTING_STATUS, p.id, bytes(status, h[0]!, d?.altSetting(h[0]!) ?? 255));
        return;
      }
      case T.GET_ALT_SETTING: {
        const alt = d?.altSetting(h[0]!) ?? 255;
        this._out(T.ALT_SETTING_STATUS, p.id, bytes(alt === 255 ? UsbStatus.INVAL : UsbStatus.SUCCESS, h[0]!, alt));
        return;
      }
      case T.START_ISO_STREAM:
        this._out(T.ISO_STREAM_STATUS, p.id, bytes(UsbStatus.INVAL, h[0]!));
        return;
      case T.STOP_ISO_STREAM:
        this._out(T.ISO_STREAM_STATUS, p.id, bytes(UsbStatus.SUCCESS, h[0]!));
        return;
      case T.START_INTERRUPT_RECEIVING:
        return this._startInterrupt(p.id, h[0]!);
      case T.STOP_INTERRUPT_RECEIVING: {
        const loop = this._interruptLoops.get(h[0]!);
        if (loop) loop.stop = true;
        this._interruptLoops.delete(h[0]!);
        this._out(T.INTERRUPT_RECEIVING_STATUS, p.id, bytes(UsbStatus.SUCCESS, h[0]!));
        return;
      }
      case T.ALLOC_BULK_STREAMS:
        this._out(T.BULK_STREAMS_STATUS, p.id, Uint8Array.from([...h.subarray(0, 8), UsbStatus.INVAL]));
        return;
      case T.FREE_BULK_STREAMS:
        this._out(T.BULK_STREAMS_STATUS, p.id, Uint8Array.from([...h.subarray(0, 4), 0, 0, 0, 0, UsbStatus.SUCCESS]));
        return;
      case T.START_BULK_RECEIVING:
        this._out(T.BULK_RECEIVING_STATUS, p.id, Uint8Array.from([...h.subarray(0, 4), h[8]!, UsbStatus.INVAL]));
        return;
      case T.STOP_BULK_RECEIVING:
        this._out(T.BULK_RECEIVING_STATUS, p.id, Uint8Array.from([...h.subarray(0, 5), UsbStatus.SUCCESS]));
        return;
      case T.FILTER_REJECT:
        await this.detach();
        this._onRejected.fire();
        return;
      case T.CONTROL_PACKET:
      case T.BULK_PACKET:
      case T.INTERRUPT_PACKET:
        return this._transfer(p, d);
      default:
        // iso OUT data (no iso endpoints here), device_disconnect_ack: nothing to answer.
        return;
    }
  }

  private async _transfer(p: UsbredirPacket, d: UsbDevice | undefined): Promise<void> {
    let endpoint: number;
    let length: number;
    if (p.type === T.CONTROL_PACKET) ({ endpoint, length } = readControl(p.header));
    else if (p.type === T.BULK_PACKET) ({ endpoint, length } = readBulk(p.header, this.parser));
    else ({ endpoint, length } = readSmallData(p.header));
    const isIn = (endpoint & 0x80) !== 0;
    if (!d) return this._replyData(p, UsbStatus.IOERROR, 0);
    const data = isIn ? undefined : p.data;
    let r;
    try {
      if (p.type === T.CONTROL_PACKET) {
        const c = readControl(p.header);
        const setup = { requestType: c.requestType, request: c.request, value: c.value, index: c.index, length };
        r = await d.control(setup, data);
      } else if (p.type === T.BULK_PACKET) {
        r = await d.bulk(endpoint, length, data);
      } else {
        r = d.interrupt ? await d.interrupt(endpoint, length, data) : { status: UsbStatus.STALL };
      }
    } catch {
      r = { status: UsbStatus.IOERROR };
    }
    if (this.device !== d) return; // unplugged meanwhile: the guest forgot this packet
    if (isIn) {
      let out = r.data ?? new Uint8Array(0);
      let status = r.status;
      if (out.length > length) {
        out = out.subarray(0, length);
        status = UsbStatus.BABBLE;
      }
      this._replyData(p, status, out.length, out);
    } else {
      this._replyData(p, r.status, r.written ?? (r.status === UsbStatus.SUCCESS ? p.data.length : 0));
    }
  }

  /** Interrupt IN endpoints: the host polls the device and sends what it gets as interrupt packets. */
  private _startInterrupt(id: bigint, endpoint: number): void {
    const d = this.device;
    const ep = d?.endpoints()[((endpoint & 0x80) >> 3) | (endpoint & 0x0f)];
    if (!d?.interrupt || !ep || !(endpoint & 0x80)) {
      this._out(T.INTERRUPT_RECEIVING_STATUS, id, bytes(UsbStatus.STALL, endpoint));
      return;
    }
    const old = this._interruptLoops.get(endpoint);
    if (old) old.stop = true;
    const loop = { stop: false };
    this._interruptLoops.set(endpoint, loop);
    this._out(T.INTERRUPT_RECEIVING_STATUS, id, bytes(UsbStatus.SUCCESS, endpoint));
    void (async () => {
      while (!loop.stop && this.device === d && !this._closed) {
        const r = await d.interrupt!(endpoint, ep.maxPacketSize)
          .catch(() => ({ status: UsbStatus.IOERROR, data: undefined }));
        if (loop.stop || this.device !== d) return;
        const out = r.data ?? new Uint8Array(0);
        const header = writeSmallData({ endpoint, status: r.status, length: out.length });
        this._out(T.INTERRUPT_PACKET, this._nextInterruptId++, header, out);
        if (r.status !== UsbStatus.SUCCESS) return;
      }
    })();
  }
}

const hex4 = (v: number) => v.toString(16).padStart(4, '0');
