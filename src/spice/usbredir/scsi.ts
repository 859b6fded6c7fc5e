// The SCSI commands a Linux guest sends a USB stick (drivers/usb/storage, sd.c; SPC-4/SBC-3), answered over a block
// device. A command is decoded into what the bulk-only transport must do: send bytes in, take `outBytes` out and
// write them, or nothing; then a status. Failures set sense data, read by REQUEST SENSE. CDB fields are big-endian.

/** The medium behind the stick: a disk image file (Node), a File (browser), memory (tests). */
export interface BlockDevice {
  /** Bytes; a whole number of blocks is used (a tail shorter than a block is not seen). */
  readonly size: number;
  readonly readOnly: boolean;
  read(offset: number, length: number): Promise<Uint8Array>;
  write(offset: number, data: Uint8Array): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export const BLOCK = 512;

export interface Sense {
  key: number;
  asc: number;
  ascq: number;
}

export const SENSE_OK: Sense = { key: 0, asc: 0, ascq: 0 };
const INVALID_OPCODE: Sense = { key: 0x05, asc: 0x20, ascq: 0 };
const INVALID_FIELD: Sense = { key: 0x05, asc: 0x24, ascq: 0 };
const LBA_OUT_OF_RANGE: Sense = { key: 0x05, asc: 0x21, ascq: 0 };
export const WRITE_PROTECTED: Sense = { key: 0x07, asc: 0x27, ascq: 0 };
export const MEDIUM_ERROR: Sense = { key: 0x03, asc: 0x11, ascq: 0 }; // unrecovered read error
export const WRITE_ERROR: Sense = { key: 0x03, asc: 0x0c, ascq: 0 };

/** What a command asks of the transport. */
export type ScsiPlan =
  | { kind: 'in'; data: Uint8Array }
  | { kind: 'read'; lba: number; blocks: number }
  | { kind: 'write'; lba: number; blocks: number }
  | { kind: 'none' }
  | { kind: 'fail'; sense: Sense };

export interface StickIdentity {
  vendor: string;
  product: string;
  revision: string;
  serial: string;
}

const ascii = (s: string, n: number) =>
  Uint8Array.from({ length: n }, (_, i) => (i < s.length ? s.charCodeAt(i) & 0x7f : 0x20));
const be32 = (v: DataView, at: number, x: number) => v.setUint32(at, x >>> 0, false);

export class ScsiDisk {
  sense: Sense = SENSE_OK;

  constructor(
    readonly disk: BlockDevice,
    readonly id: StickIdentity,
  ) {}

  get blocks(): number {
    return Math.floor(this.disk.size / BLOCK);
  }

  /** Decodes one CDB. The caller turns a 'fail' plan into status 1 and keeps its sense. */
  plan(cdb: Uint8Array): ScsiPlan {
    const v = new DataView(cdb.buffer, cdb.byteOffset, cdb.byteLength);
    const at = (i: number) => cdb[i] ?? 0;
    const u16 = (i: number) => (cdb.length >= i + 2 ? v.getUint16(i, false) : 0);
    const u32 = (i: number) => (cdb.length >= i + 4 ? v.getUint32(i, false) : 0);
    const u64 = (i: number) => (cdb.length >= i + 8 ? Number(v.getBigUint64(i, false)) : 0);
    switch (at(0)) {
      case 0x00: // TEST UNIT READY
      case 0x1e: // PREVENT ALLOW MEDIUM REMOVAL
      case 0x1b: // START STOP UNIT
      case 0x2f: // VERIFY(10)
        return { kind: 'none' };
      case 0x35: // SYNCHRONIZE CACHE(10)
      case 0x91: // SYNCHRONIZE CACHE(16)
        return { kind: 'none' };
      case 0x03: // REQUEST SENSE: fixed format, 18 bytes
        return { kind: 'in', data: this._takeSense().subarray(0, at(4)) };
      case 0x12: // INQUIRY
        return this._inquiry(at(1) & 1, at(2), u16(3));
      case 0x1a: // MODE SENSE(6)
        return { kind: 'in', data: Uint8Array.from([3, 0, this.disk.readOnly ? 0x80 : 0, 0]).subarray(0, at(4)) };
      case 0x5a: // MODE SENSE(10)
        return { kind: 'in', data: Uint8Array.from([0, 6, 0, this.disk.readOnly ? 0x80 : 0, 0, 0, 0, 0]).subarray(0, u16(7)) };
      case 0x25: { // READ CAPACITY(10)
        const out = new Uint8Array(8);
        const d = new DataView(out.buffer);
        be32(d, 0, Math.min(this.blocks - 1, 0xffffffff));
        be32(d, 4, BLOCK);
        return { kind: 'in', data: out };
      }
      case 0x9e: { // SERVICE ACTION IN(16): READ CAPACITY(16)
        if ((at(1) & 0x1f) !== 0x10) return this._fail(INVALID_FIELD);
        const out = new Uint8Array(32);
        const d = new DataView(out.buffer);
        d.setBigUint64(0, BigInt(Math.max(this.blocks - 1, 0)), false);
        be32(d, 8, BLOCK);
        return { kind: 'in', data: out.subarray(0, u32(10)) };
      }
      case 0xa0: { // REPORT LUNS: one LUN, 0
        const out = new Uint8Array(16);
        be32(new DataView(out.buffer), 0, 8);
        return { kind: 'in', data: out.subarray(0, u32(6)) };
      }
      case 0x08: // READ(6)
        return this._rw('read', ((at(1) & 0x1f) << 16) | u16(2), at(4) || 256);
      case 0x0a: // WRITE(6)
        return this._rw('write', ((at(1) & 0x1f) << 16) | u16(2), at(4) || 256);
      case 0x28: // READ(10)
        return this._rw('read', u32(2), u16(7));
      case 0x2a: // WRITE(10)
        return this._rw('write', u32(2), u16(7));
      case 0x88: // READ(16)
        return this._rw('read', u64(2), u32(10));
      case 0x8a: // WRITE(16)
        return this._rw('write', u64(2), u32(10));
      default:
        return this._fail(INVALID_OPCODE);
    }
  }

  fail(sense: Sense): void {
    this.sense = sense;
  }

  private _fail(sense: Sense): ScsiPlan {
    this.sense = sense;
    return { kind: 'fail', sense };
  }

  private _rw(kind: 'read' | 'write', lba: number, blocks: number): ScsiPlan {
    if (lba + blocks > this.blocks) return this._fail(LBA_OUT_OF_RANGE);
    if (kind === 'write' && this.disk.readOnly) return this._fail(WRITE_PROTECTED);
    if (blocks === 0) return { kind: 'none' };
    return { kind, lba, blocks };
  }

  private _takeSense(): Uint8Array {
    const s = this.sense;
    this.sense = SENSE_OK;
    const out = new Uint8Array(18);
    out[0] = 0x70;
    out[2] = s.key;
    out[7] = 10;
    out[12] = s.asc;
    out[13] = s.ascq;
    return out;
  }

  private _inquiry(evpd: number, page: number, alloc: number): ScsiPlan {
    if (evpd) {
      if (page === 0x00) return { kind: 'in', data: Uint8Array.from([0, 0, 0, 2, 0x00, 0x80]).subarray(0, alloc) };
      if (page === 0x80) {
        const sn = ascii(this.id.serial, this.id.serial.length);
        return { kind: 'in', data: Uint8Array.from([0, 0x80, 0, sn.length, ...sn]).subarray(0, alloc) };
      }
      return this._fail(INVALID_FIELD);
    }
    if (page !== 0) return this._fail(INVALID_FIELD);
    const out = new Uint8Array(36);
    out[0] = 0x00; // direct-access block device
    out[1] = 0x80; // removable
    out[2] = 0x04; // SPC-2: Linux asks for 18 bytes of sense
    out[3] = 0x02; // response data format 2
    out[4] = 31; // additional length
    out.set(ascii(this.id.vendor, 8), 8);
    out.set(ascii(this.id.product, 16), 16);
    out.set(ascii(this.id.revision, 4), 32);
    return { kind: 'in', data: out.subarray(0, alloc) };
  }
}
