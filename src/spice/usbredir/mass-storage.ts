// A virtual USB stick: USB mass storage, SCSI transparent command set, bulk-only transport (USB MSC BOT 1.0) over a
// BlockDevice. High speed, one configuration, one interface (08/06/50), bulk IN 0x81 and OUT 0x02 of 512 bytes.
// Each command: a 31-byte CBW on OUT, an optional data phase, a 13-byte CSW on IN. Reads are served as the guest
// asks for them (a READ(10) of 240 blocks is never held whole); writes go to the medium as they arrive.
import type { ControlSetup, TransferResult, UsbDevice } from './device.ts';
import { EpType, UsbSpeed, UsbStatus, epSlot, type DeviceConnect, type EndpointInfo, type InterfaceInfo } from './protocol.ts';
import { BLOCK, MEDIUM_ERROR, ScsiDisk, WRITE_ERROR, type BlockDevice, type StickIdentity } from './scsi.ts';
import { configDescriptor, deviceDescriptor, qualifierDescriptor, stringDescriptor } from './descriptors.ts';

export const EP_IN = 0x81;
export const EP_OUT = 0x02;
const CBW_SIGNATURE = 0x43425355;
const CSW_SIGNATURE = 0x53425355;

export interface MassStorageOptions {
  vendorId?: number;
  productId?: number;
  /** SCSI INQUIRY and USB strings. */
  identity?: Partial<StickIdentity> & { manufacturer?: string };
}

type Phase =
  | { kind: 'cbw' }
  | { kind: 'in'; data: Uint8Array }
  | { kind: 'read'; offset: number; left: number }
  | { kind: 'out'; offset: number; left: number; discard: number }
  | { kind: 'csw' };

export class MassStorageDevice implements UsbDevice {
  readonly connectInfo: DeviceConnect;
  readonly scsi: ScsiDisk;
  configuration = 1;
  /** Commands handled (CBWs), for tests and progress. */
  commands = 0;
  private readonly _strings: string[];
  private _phase: Phase = { kind: 'cbw' };
  private _tag = 0;
  private _expected = 0;
  private _moved = 0;
  private _status = 0;

  constructor(readonly disk: BlockDevice, o: MassStorageOptions = {}) {
    // pid.codes test VID:PID unless told otherwise.
    this.connectInfo = {
      speed: UsbSpeed.HIGH, deviceClass: 0, deviceSubclass: 0, deviceProtocol: 0,
      vendorId: o.vendorId ?? 0x1209, productId: o.productId ?? 0x0001, bcdDevice: 0x0100,
    };
    const id: StickIdentity = {
      vendor: o.identity?.vendor ?? 'Oriel', product: o.identity?.product ?? 'Virtual USB stick',
      revision: o.identity?.revision ?? '1.0', serial: o.identity?.serial ?? '0R1E1000001',
    };
    this.scsi = new ScsiDisk(disk, id);
    this._strings = [o.identity?.manufacturer ?? id.vendor, id.product, id.serial];
  }

  interfaces(): InterfaceInfo[] {
    return [{ number: 0, class: 0x08, subclass: 0x06, protocol: 0x50 }];
  }

  endpoints(): (EndpointInfo | undefined)[] {
    const slots: (EndpointInfo | undefined)[] = new Array(32).fill(undefined);
    slots[0] = slots[16] = { type: EpType.CONTROL, interval: 0, interface: 0, maxPacketSize: 64 };
    slots[epSlot(EP_OUT)] = slots[epSlot(EP_IN)] = { type: EpType.BULK, interval: 0, interface: 0, maxPacketSize: 512 };
    return slots;
  }

  async control(s: ControlSetup, _data?: Uint8Array): Promise<TransferResult> {
    const ok = (data?: Uint8Array): TransferResult =>
      ({ status: UsbStatus.SUCCESS, data: data?.subarray(0, s.length) });
    const stall: TransferResult = { status: UsbStatus.STALL };
    switch ((s.requestType << 8) | s.request) {
      case 0x8006: { // GET_DESCRIPTOR
        const type = s.value >> 8;
        const index = s.value & 0xff;
        if (type === 1) return ok(deviceDescriptor(this.connectInfo));
        if (type === 2 && index === 0) return ok(configDescriptor(EP_IN, EP_OUT));
        if (type === 6) return ok(qualifierDescriptor());
        if (type === 3 && index === 0) return ok(Uint8Array.from([4, 3, 0x09, 0x04]));
        if (type === 3 && index <= this._strings.length) return ok(stringDescriptor(this._strings[index - 1]!));
        return stall;
      }
      case 0x8000: case 0x8100: case 0x8200: // GET_STATUS (device, interface, endpoint)
        return ok(Uint8Array.from([0, 0]));
      case 0x8008: // GET_CONFIGURATION
        return ok(Uint8Array.from([this.configuration]));
      case 0x0009: // SET_CONFIGURATION (QEMU sends set_configuration instead; kept for other guests)
        return { status: await this.setConfiguration(s.value & 0xff) };
      case 0x010b: // SET_INTERFACE
        return { status: await this.setAltSetting(s.index & 0xff, s.value & 0xff) };
      case 0x0201: // CLEAR_FEATURE(ENDPOINT_HALT)
      case 0x0001: case 0x0003: // CLEAR/SET_FEATURE on the device (remote wakeup)
        return ok();
      case 0xa1fe: // GET_MAX_LUN
        return ok(Uint8Array.from([0]));
      case 0x21ff: // Bulk-Only Mass Storage Reset
        this._phase = { kind: 'cbw' };
        return ok();
      default:
        return stall;
    }
  }

  async bulk(endpoint: number, length: number, data?: Uint8Array): Promise<TransferResult> {
    if (endpoint === EP_OUT && data) return this._out(data);
    if (endpoint === EP_IN) return this._in(length);
    return { status: UsbStatus.STALL };
  }

  async setConfiguration(value: number): Promise<number> {
    if (value > 1) return UsbStatus.STALL;
    this.configuration = value;
    this._phase = { kind: 'cbw' };
    return UsbStatus.SUCCESS;
  }

  async setAltSetting(iface: number, alt: number): Promise<number> {
    return iface === 0 && alt === 0 ? UsbStatus.SUCCESS : UsbStatus.STALL;
  }

  altSetting(iface: number): number {
    return iface === 0 ? 0 : 255;
  }

  async reset(): Promise<void> {
    this._phase = { kind: 'cbw' };
  }

  async close(): Promise<void> {
    await this.disk.flush().catch(() => {});
    await this.disk.close();
  }

  private async _out(data: Uint8Array): Promise<TransferResult> {
    const p = this._phase;
    if (p.kind === 'cbw') return this._cbw(data);
    if (p.kind !== 'out') return { status: UsbStatus.STALL };
    const n = Math.min(p.left, data.length);
    if (n > 0) {
      try {
        await this.disk.write(p.offset, data.subarray(0, n));
        this._moved += n;
      } catch {
        this._failWith(WRITE_ERROR);
        p.discard += p.left - n;
        p.left = n;
      }
    }
    p.offset += n;
    p.left -= n;
    p.discard -= Math.min(p.discard, data.length - n);
    if (p.left === 0 && p.discard === 0) this._phase = { kind: 'csw' };
    return { status: UsbStatus.SUCCESS, written: data.length };
  }

  private async _in(length: number): Promise<TransferResult> {
    const p = this._phase;
    if (p.kind === 'csw') return { status: UsbStatus.SUCCESS, data: this._csw() };
    if (p.kind === 'in') {
      const out = p.data.subarray(0, length);
      p.data = p.data.subarray(out.length);
      this._moved += out.length;
      if (p.data.length === 0 || out.length < length) this._phase = { kind: 'csw' };
      return { status: UsbStatus.SUCCESS, data: out };
    }
    if (p.kind === 'read') {
      const n = Math.min(length, p.left);
      let out: Uint8Array;
      try {
        out = n ? await this.disk.read(p.offset, n) : new Uint8Array(0);
      } catch {
        this._failWith(MEDIUM_ERROR);
        this._phase = { kind: 'csw' };
        return { status: UsbStatus.SUCCESS, data: new Uint8Array(0) };
      }
      p.offset += n;
      p.left -= n;
      this._moved += n;
      if (p.left === 0 || n < length) this._phase = { kind: 'csw' };
      return { status: UsbStatus.SUCCESS, data: out };
    }
    return { status: UsbStatus.STALL };
  }

  private async _cbw(b: Uint8Array): Promise<TransferResult> {
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (b.length !== 31 || v.getUint32(0, true) !== CBW_SIGNATURE || b[14]! < 1 || b[14]! > 16) {
      return { status: UsbStatus.STALL }; // not a valid CBW: the guest recovers with a reset
    }
    this.commands++;
    this._tag = v.getUint32(4, true);
    this._expected = v.getUint32(8, true);
    const dirIn = (b[12]! & 0x80) !== 0;
    const cdb = b.subarray(15, 15 + b[14]!);
    this._moved = 0;
    this._status = 0;
    const plan = this.scsi.plan(cdb);
    if (plan.kind === 'none' && (cdb[0] === 0x35 || cdb[0] === 0x91)) {
      await this.disk.flush().catch(() => this._failWith(WRITE_ERROR));
    }
    const len = this._expected;
    if (plan.kind === 'fail') this._status = 1;
    const mismatch = (plan.kind === 'in' || plan.kind === 'read') ? !dirIn : plan.kind === 'write' ? dirIn : false;
    if (mismatch && len > 0) this._status = 2; // phase error: directions differ
    const ok = this._status === 0;
    if (len === 0) this._phase = { kind: 'csw' };
    else if (dirIn) {
      if (ok && plan.kind === 'in') this._phase = { kind: 'in', data: plan.data.subarray(0, len) };
      else if (ok && plan.kind === 'read') {
        this._phase = { kind: 'read', offset: plan.lba * BLOCK, left: Math.min(len, plan.blocks * BLOCK) };
      } else this._phase = { kind: 'in', data: new Uint8Array(0) };
    } else if (ok && plan.kind === 'write') {
      const left = Math.min(len, plan.blocks * BLOCK);
      this._phase = { kind: 'out', offset: plan.lba * BLOCK, left, discard: len - left };
    } else this._phase = { kind: 'out', offset: 0, left: 0, discard: len };
    return { status: UsbStatus.SUCCESS, written: b.length };
  }

  private _failWith(sense: typeof MEDIUM_ERROR): void {
    this.scsi.fail(sense);
    this._status = 1;
  }

  private _csw(): Uint8Array {
    const out = new Uint8Array(13);
    const v = new DataView(out.buffer);
    v.setUint32(0, CSW_SIGNATURE, true);
    v.setUint32(4, this._tag, true);
    v.setUint32(8, Math.max(0, this._expected - this._moved), true);
    out[12] = this._status;
    this._phase = { kind: 'cbw' };
    return out;
  }
}
