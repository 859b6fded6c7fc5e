// The OpenCL remoting wire protocol between the guest ICD (guest/icd.c, which mirrors these numbers in
// guest/protocol.h) and the host helper, over the VM's virtio-serial port org.oriel.opencl.0. Little-endian.
//
//   frame    = u32 body length (1..MAX_FRAME) + body
//   request  = u32 id, u16 op, u16 reserved (0), then the op's arguments in order
//   response = u32 id (the request's), i32 status (an OpenCL error code, CL_SUCCESS = 0), then the op's results
//   notice   = u32 id 0, i32 0, u64 helper, u32 link: sent unasked by the helper on each new link to the port (the
//              guest never numbers a request 0). `helper` is random per helper process, `link` counts its links. A
//              guest waiting for an answer that sees a notice of another helper (a restore started a new one) or of a
//              later link (the helper dropped the one the request came on) knows that answer is not coming: the call
//              fails with CL_DEVICE_NOT_AVAILABLE instead of waiting forever (guest/transport.c). Answers of other ids
//              (a request sent before a restore, answered by the new helper) are skipped by the guest.
//
// Argument kinds: u32, u64 (handles are u64 tokens: helper-side only, never host pointers), bytes (u32 length + that
// many bytes). A request whose arguments do not parse, or that has bytes left over, gets CL_INVALID_VALUE.

export const MAX_FRAME = 64 * 1024 * 1024;
/** The largest info value the helper returns (clinfo's longest are extension lists, a few KiB). */
export const MAX_INFO = 64 * 1024;
export const PORT_NAME = 'org.oriel.opencl.0';

export const Op = {
  PLATFORM_INFO: 1, // u32 param -> bytes
  DEVICE_IDS: 2, // u64 type -> u32 count, u64 tokens[count]
  DEVICE_INFO: 3, // u64 device, u32 param -> bytes
  CREATE_CONTEXT: 4, // u32 count, u64 devices[count] -> u64 context
  RELEASE: 5, // u64 object
  RETAIN: 6, // u64 object
  CREATE_QUEUE: 7, // u64 context, u64 device, u64 properties -> u64 queue
  CREATE_BUFFER: 8, // u64 context, u64 flags, u64 size, bytes initial (empty or size bytes) -> u64 mem
  WRITE_BUFFER: 9, // u64 queue, u64 mem, u64 offset, bytes data
  READ_BUFFER: 10, // u64 queue, u64 mem, u64 offset, u64 size -> bytes
  CREATE_PROGRAM: 11, // u64 context, bytes source -> u64 program
  BUILD_PROGRAM: 12, // u64 program, bytes options
  PROGRAM_BUILD_INFO: 13, // u64 program, u64 device, u32 param -> bytes
  CREATE_KERNEL: 14, // u64 program, bytes name -> u64 kernel
  SET_KERNEL_ARG: 15, // u64 kernel, u32 index, u32 kind (ArgKind), u64 size, bytes value
  // [u32 1]: the guest wants the kernel's event (its profiling times): answered with its token (kind 'event').
  ENQUEUE_KERNEL: 16, // u64 queue, u64 kernel, u32 dims, u64 offset[3], u64 global[3], u64 local[3] (local 0: none),
  //                     [u32 want event] -> [u64 event]
  FINISH: 17, // u64 queue
  KERNEL_WORK_GROUP_INFO: 18, // u64 kernel, u64 device, u32 param -> bytes
  PROGRAM_INFO: 19, // u64 program, u32 param -> bytes
  KERNEL_INFO: 20, // u64 kernel, u32 param -> bytes
  MEM_INFO: 21, // u64 mem, u32 param -> bytes
  CONTEXT_INFO: 22, // u64 context, u32 param -> bytes
  // The zero-copy window (window.ts): buffers whose storage is [offset, offset + size) of the VM's ivshmem BAR.
  WINDOW: 23, // -> u64 window size (0: this VM has none)
  CREATE_BUFFER_WINDOW: 24, // u64 context, u64 flags, u64 offset, u64 size -> u64 mem
  MAP_BUFFER: 25, // u64 queue, u64 mem (a window buffer), u64 map flags, u64 offset, u64 size (blocking)
  UNMAP: 26, // u64 queue, u64 mem, u64 offset (of a mapping MAP_BUFFER made)
  // The guest asks when it opens the port, saying which process it is (random per process, never 0; an ICD of before
  // says nothing): the port has one opener, so another process's HELLO means the previous one is gone, and the helper
  // releases what it left (session.ts: endProcess).
  HELLO: 27, // [u64 process] -> u64 helper, u32 link (as the notice says them)
  EVENT_PROFILING: 28, // u64 event, u32 param (CL_PROFILING_COMMAND_QUEUED..COMPLETE) -> u64 ns
} as const;
/** The id of the helper's notices (never a request's). */
export const NOTICE_ID = 0;
export type OpCode = (typeof Op)[keyof typeof Op];

export const ArgKind = { VALUE: 0, MEM: 1, LOCAL: 2 } as const;

/** The OpenCL error codes the helper itself produces (cl.h). */
export const CL = {
  SUCCESS: 0,
  DEVICE_NOT_FOUND: -1,
  DEVICE_NOT_AVAILABLE: -2,
  OUT_OF_HOST_MEMORY: -6,
  MAP_FAILURE: -12,
  BUILD_PROGRAM_FAILURE: -11,
  PROFILING_INFO_NOT_AVAILABLE: -7,
  INVALID_VALUE: -30,
  INVALID_DEVICE_TYPE: -31,
  INVALID_PLATFORM: -32,
  INVALID_DEVICE: -33,
  INVALID_CONTEXT: -34,
  INVALID_COMMAND_QUEUE: -36,
  INVALID_EVENT: -58,
  INVALID_MEM_OBJECT: -38,
  INVALID_BINARY: -42,
  INVALID_BUILD_OPTIONS: -43,
  INVALID_PROGRAM: -44,
  INVALID_KERNEL: -48,
  INVALID_ARG_INDEX: -49,
  INVALID_ARG_SIZE: -51,
  INVALID_WORK_DIMENSION: -53,
  INVALID_HOST_PTR: -37,
  INVALID_BUFFER_SIZE: -61,
  INVALID_OPERATION: -59,
} as const;

export class DecodeError extends Error {}

/** Reads a request's arguments; every read is bounds-checked and throws DecodeError past the end. */
export class Reader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  private need(n: number): number {
    if (n < 0 || this.pos + n > this.buf.length) throw new DecodeError(`request cut short at byte ${this.pos}`);
    const at = this.pos;
    this.pos += n;
    return at;
  }
  u16(): number {
    return this.buf.readUInt16LE(this.need(2));
  }
  u32(): number {
    return this.buf.readUInt32LE(this.need(4));
  }
  u64(): bigint {
    return this.buf.readBigUInt64LE(this.need(8));
  }
  /** A u64 that must fit a JS number safely (sizes, offsets). */
  size(): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DecodeError('size out of range');
    return Number(v);
  }
  /** Whether any argument bytes are left. */
  get more(): boolean {
    return this.pos < this.buf.length;
  }
  bytes(): Buffer {
    const n = this.u32();
    const at = this.need(n);
    return this.buf.subarray(at, at + n);
  }
  end(): void {
    if (this.pos !== this.buf.length) throw new DecodeError(`${this.buf.length - this.pos} unexpected bytes at the end`);
  }
}

/** Builds a response's results. */
export class Writer {
  private parts: Buffer[] = [];
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    this.parts.push(b);
    return this;
  }
  bytes(v: Buffer): this {
    this.u32(v.length);
    this.parts.push(v);
    return this;
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export interface Request {
  id: number;
  op: number;
  args: Reader;
}

/** Splits a request body into its header and arguments (throws DecodeError on a short one). */
export function parseRequest(body: Buffer): Request {
  const r = new Reader(body);
  const id = r.u32();
  const op = r.u16();
  r.u16();
  return { id, op, args: new Reader(body.subarray(8)) };
}

export function encodeResponse(id: number, status: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt32LE(8 + payload.length, 0);
  head.writeUInt32LE(id >>> 0, 4);
  head.writeInt32LE(status, 8);
  return Buffer.concat([head, payload]);
}

/** The notice the helper sends on a new link (and the HELLO op's results): which helper, which of its links. */
export function encodeNotice(helper: bigint, link: number): Buffer {
  return encodeResponse(NOTICE_ID, CL.SUCCESS, new Writer().u64(helper).u32(link).done());
}

export function encodeRequest(id: number, op: number, args: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt32LE(8 + args.length, 0);
  head.writeUInt32LE(id >>> 0, 4);
  head.writeUInt16LE(op, 8);
  return Buffer.concat([head, args]);
}

/** Cuts a byte stream into frame bodies. A length of 0 or above MAX_FRAME means the stream cannot be trusted. Chunks
 * are joined once per frame, when it is whole (a 16 MiB frame arrives in hundreds of chunks). */
export class FrameSplitter {
  private pending: Buffer[] = [];
  private have = 0;
  /** The whole frame's size (header included) once its header is in. */
  private need?: number;

  /** Bytes of a frame not yet whole. */
  get partial(): number {
    return this.have;
  }

  /** The whole bodies completed by `chunk`; throws DecodeError on a bad length (the caller drops the link). */
  push(chunk: Buffer): Buffer[] {
    this.pending.push(chunk);
    this.have += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.need === undefined) {
        if (this.have < 4) return out;
        if (this.pending[0]!.length < 4) this.pending = [Buffer.concat(this.pending, this.have)];
        const len = this.pending[0]!.readUInt32LE(0);
        if (len === 0 || len > MAX_FRAME) throw new DecodeError(`bad frame length ${len}`);
        this.need = 4 + len;
      }
      if (this.have < this.need) return out;
      const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.have);
      out.push(buf.subarray(4, this.need));
      const rest = buf.subarray(this.need);
      this.pending = rest.length ? [rest] : [];
      this.have = rest.length;
      this.need = undefined;
    }
  }
}
