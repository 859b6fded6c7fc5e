// A BlockDevice in memory: the browser's stick from a File's bytes, and the tests' medium.
import type { BlockDevice } from './scsi.ts';

export class MemoryDisk implements BlockDevice {
  constructor(
    readonly bytes: Uint8Array,
    readonly readOnly = false,
  ) {}

  get size(): number {
    return this.bytes.length;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || offset + length > this.bytes.length) throw new RangeError(`read beyond the medium`);
    return this.bytes.slice(offset, offset + length);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (this.readOnly) throw new Error('the medium is read-only');
    if (offset < 0 || offset + data.length > this.bytes.length) throw new RangeError(`write beyond the medium`);
    this.bytes.set(data, offset);
  }

  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}
