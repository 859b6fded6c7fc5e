// The host uid (and gid, the same number) each OpenCL helper runs as when the server is root: one per running helper,
// from a configured range of numbers that own nothing on the host (no passwd entry is needed). A VM keeps the same
// number from run to run while no other VM took it (its slot is derived from its id), so logs stay readable.
import { createHash } from 'node:crypto';

export interface UidRange {
  first: number;
  count: number;
}

/** The built-in range: 65536 ids far above login users and the usual subordinate-id ranges (ORIEL_OPENCL_UIDS). */
export const DEFAULT_UID_RANGE: UidRange = { first: 1_500_000_000, count: 65536 };

export class HelperUids {
  private readonly taken = new Map<number, string>();

  constructor(readonly range: UidRange = DEFAULT_UID_RANGE) {
    if (!Number.isInteger(range.first) || !Number.isInteger(range.count) || range.first < 1000 || range.count < 1
      || range.first + range.count - 1 >= 2 ** 32 - 1) throw new RangeError(`bad helper uid range ${JSON.stringify(range)}`);
  }

  /** A free id for `vmId` (its own slot, else the next free one); undefined when all are taken. */
  take(vmId: string): number | undefined {
    const { first, count } = this.range;
    const start = createHash('sha256').update(vmId).digest().readUInt32BE(0) % count;
    for (let i = 0; i < count; i++) {
      const uid = first + ((start + i) % count);
      if (!this.taken.has(uid)) {
        this.taken.set(uid, vmId);
        return uid;
      }
    }
    return undefined;
  }

  free(uid: number): void {
    this.taken.delete(uid);
  }
}
