// One guest's OpenCL session: decodes a request (protocol.ts), checks every token, length and offset, calls the
// host's OpenCL (cl.ts) and encodes the response. `handle` never throws: a malformed or hostile request gets an
// OpenCL error code. Refused outright: program binaries and IL (no op carries them), clEnqueueNativeKernel (none
// either), `-I` build options and `#include` in sources (they would read host files), handle-valued info queries.
import { clApi, pointerCell, sizeArray, type ClApi, type HandleKind } from './cl.ts';
import { randomBytes } from 'node:crypto';
import { Handles, type Entry } from './handles.ts';
import type { Window } from './window.ts';
import {
  ArgKind, CL, DecodeError, MAX_FRAME, MAX_INFO, Op, Writer, encodeResponse, parseRequest, type Reader,
} from './protocol.ts';

/** Largest buffer a guest may create (the copy path moves it through the serial port anyway). */
export const MAX_BUFFER = 2 ** 31;
const MAX_ARG = 4096;
const MAX_SOURCE = 4 * 1024 * 1024;
const MAX_DEVICES = 64;
/** Info params whose values are host handles or pointers (or take pointers in): never passed through. */
const HANDLE_DEVICE_INFO = new Set([0x1031, 0x1042]); // PLATFORM, PARENT_DEVICE: zero (the guest knows its own)
const PROGRAM_INFO_OK = new Set([0x1160, 0x1162, 0x1164, 0x1165, 0x1167, 0x1168]);
const KERNEL_INFO_OK = new Set([0x1190, 0x1191, 0x1192, 0x1195]);
const MEM_INFO_OK = new Set([0x1100, 0x1101, 0x1102, 0x1104, 0x1105, 0x1108]);
const CONTEXT_INFO_OK = new Set([0x1080, 0x1083]); // REFERENCE_COUNT, NUM_DEVICES (DEVICES is translated)
const CL_CONTEXT_DEVICES = 0x1081;
/** READ_WRITE, WRITE_ONLY, READ_ONLY, ALLOC_HOST_PTR, HOST_WRITE_ONLY, HOST_READ_ONLY, HOST_NO_ACCESS. */
const BUFFER_FLAGS_OK = 0x1n | 0x2n | 0x4n | 0x10n | 0x80n | 0x100n | 0x200n;
const CL_MEM_COPY_HOST_PTR = 0x20n;
const CL_MEM_USE_HOST_PTR = 0x8n;
const CL_MEM_ALLOC_HOST_PTR = 0x10n;
/** CL_MAP_READ, CL_MAP_WRITE, CL_MAP_WRITE_INVALIDATE_REGION. */
const MAP_FLAGS_OK = 0x1n | 0x2n | 0x4n;
/** Live mappings of one window buffer. */
const MAX_MAPS = 1024;

class ClError extends Error {
  constructor(readonly code: number, msg = `OpenCL error ${code}`) {
    super(msg);
  }
}
const fail = (code: number): never => {
  throw new ClError(code);
};
const check = (code: number) => (code === CL.SUCCESS ? undefined : fail(code));

/** Whether an OpenCL C source pulls in other files; comments and line splices are removed first. */
export function sourceIncludes(src: string): boolean {
  const flat = src.replace(/\\\r?\n/g, '').replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/.*$/gm, '');
  return /^\s*#\s*(include|import|include_next)\b/m.test(flat) || /__has_include/.test(flat);
}

/** Whether build options name include directories or other files (-I, -include, --sysroot, @file...). */
export function optionsReachFiles(opts: string): boolean {
  return /(^|\s)(-I|-include|-imacros|-isystem|-iquote|-idirafter|--sysroot|-isysroot|@|-Xclang|-mllvm|-load|-fplugin)/
    .test(opts);
}

export class Session {
  /** The objects of the guest process that has the port (a new table, and token session, for each process). */
  handles = new Handles();
  /** That process, as its HELLO said (0: not said). */
  private process = 0n;
  /** Told how many objects a process that ended had left (helper-main logs it). */
  onProcessEnd?: (objects: number) => void;
  /** This helper among all of the VM's (random, never 0): its notices and HELLO say it (protocol.ts). */
  readonly helper = randomBytes(8).readBigUInt64LE(0) | 1n;
  /** Which of the helper's links to the port is the current one (helper-main counts them; HELLO says it). */
  link = 0;
  private readonly cl: ClApi;

  /** The VM's zero-copy window, when it has one (window.ts). */
  constructor(cl: ClApi = clApi(), private readonly window?: Window) {
    this.cl = cl;
  }

  /** The response frame to one request body. */
  handle(body: Buffer): Buffer {
    let id = 0;
    try {
      const req = parseRequest(body);
      id = req.id;
      const payload = this.dispatch(req.op, req.args);
      return encodeResponse(id, CL.SUCCESS, payload);
    } catch (e) {
      if (e instanceof ClError) return encodeResponse(id, e.code);
      if (e instanceof DecodeError) return encodeResponse(id, CL.INVALID_VALUE);
      return encodeResponse(id, CL.OUT_OF_HOST_MEMORY);
    }
  }

  /** Releases everything the guest still holds (its helper is going away or it was restored elsewhere). */
  close(): void {
    for (const [token, e] of this.handles.entries()) {
      if (e.kind !== 'device') for (let i = 0; i < e.refs; i++) this.cl.release[e.kind](e.host);
      this.handles.drop(token);
    }
  }

  /** A guest process that had the port is gone (another one said HELLO): what it still held is released once its
   * commands have finished (their window ranges are the next process's to use), and its tokens end with it (a new
   * token session). Without this a program that exits without releasing, as many do, left its buffers in host
   * memory until the VM stopped, and its objects counted against every later program's MAX_OBJECTS. */
  private endProcess(): void {
    const left = this.handles.entries().filter(([, e]) => e.kind !== 'device').length;
    if (left > 0) {
      this.finishAll();
      this.close();
      this.onProcessEnd?.(left);
    }
    this.handles = new Handles(this.handles.session);
  }

  private obj(token: bigint, kind: HandleKind, code: number) {
    return this.handles.get(token, kind) ?? fail(code);
  }

  private token(kind: HandleKind, host: bigint | null, err: Int32Array, extra = {}): Buffer {
    if (err[0] !== CL.SUCCESS || !host) fail(err[0] || CL.OUT_OF_HOST_MEMORY);
    const t = this.handles.add(kind, host!, extra);
    if (t === undefined) {
      this.cl.release[kind](host);
      fail(CL.OUT_OF_HOST_MEMORY);
    }
    return new Writer().u64(t!).done();
  }

  private dispatch(op: number, a: Reader): Buffer {
    const cl = this.cl;
    const err = new Int32Array(1);
    switch (op) {
      case Op.PLATFORM_INFO: {
        const param = a.u32();
        a.end();
        return info((...x) => cl.getPlatformInfo(this.platform(), param, ...x));
      }
      case Op.DEVICE_IDS: {
        const type = a.u64();
        a.end();
        const n = new Uint32Array(1);
        check(cl.getDeviceIDs(this.platform(), type, 0, null, n));
        const count = Math.min(n[0]!, MAX_DEVICES);
        const ids = new BigUint64Array(count);
        check(cl.getDeviceIDs(this.platform(), type, count, ids, null));
        const w = new Writer().u32(count);
        for (const d of ids) w.u64(this.handles.add('device', d) ?? fail(CL.OUT_OF_HOST_MEMORY));
        return w.done();
      }
      case Op.DEVICE_INFO: {
        const dev = this.obj(a.u64(), 'device', CL.INVALID_DEVICE);
        const param = a.u32();
        a.end();
        if (HANDLE_DEVICE_INFO.has(param)) return new Writer().bytes(Buffer.alloc(8)).done();
        return info((...x) => cl.getDeviceInfo(dev.host, param, ...x));
      }
      case Op.CREATE_CONTEXT: {
        const n = a.u32();
        if (n < 1 || n > MAX_DEVICES) fail(CL.INVALID_VALUE);
        const tokens = Array.from({ length: n }, () => a.u64());
        a.end();
        const devs = new BigUint64Array(tokens.map((t) => this.obj(t, 'device', CL.INVALID_DEVICE).host));
        const ctx = cl.createContext(null, n, devs, null, null, err);
        return this.token('context', ctx, err, { devices: tokens });
      }
      case Op.RETAIN:
      case Op.RELEASE: {
        const t = a.u64();
        a.end();
        const kind = this.handles.kindOf(t) ?? fail(CL.INVALID_VALUE);
        const e = this.handles.get(t, kind)!;
        if (kind === 'device') return Buffer.alloc(0); // root devices: retain/release do nothing
        if (op === Op.RETAIN) {
          check(cl.retain[kind](e.host));
          e.refs++;
        } else {
          // A window buffer's range goes back to the guest's allocator once released: no command may still use it.
          if (kind === 'mem' && e.refs === 1 && e.windowOffset !== undefined) this.finishAll();
          check(cl.release[kind](e.host));
          if (--e.refs === 0) this.handles.drop(t);
        }
        return Buffer.alloc(0);
      }
      case Op.CREATE_QUEUE: {
        const ctx = this.obj(a.u64(), 'context', CL.INVALID_CONTEXT);
        const devToken = a.u64();
        const dev = this.obj(devToken, 'device', CL.INVALID_DEVICE);
        const props = a.u64();
        a.end();
        if (!ctx.devices!.includes(devToken)) fail(CL.INVALID_DEVICE);
        if (props & ~0x3n) fail(CL.INVALID_VALUE); // out-of-order and profiling only
        return this.token('queue', cl.createCommandQueue(ctx.host, dev.host, props, err), err);
      }
      case Op.CREATE_BUFFER: {
        const ctx = this.obj(a.u64(), 'context', CL.INVALID_CONTEXT);
        let flags = a.u64();
        const size = a.size();
        const init = a.bytes();
        a.end();
        if (flags & ~BUFFER_FLAGS_OK) fail(CL.INVALID_VALUE);
        if (size === 0 || size > MAX_BUFFER) fail(CL.INVALID_BUFFER_SIZE);
        if (init.length !== 0 && init.length !== size) fail(CL.INVALID_VALUE);
        if (init.length) flags |= CL_MEM_COPY_HOST_PTR;
        const mem = cl.createBuffer(ctx.host, flags, size, init.length ? init : null, err);
        return this.token('mem', mem, err, { size });
      }
      case Op.WRITE_BUFFER: {
        const q = this.obj(a.u64(), 'queue', CL.INVALID_COMMAND_QUEUE);
        const mem = this.obj(a.u64(), 'mem', CL.INVALID_MEM_OBJECT);
        const offset = a.size();
        const data = a.bytes();
        a.end();
        if (data.length === 0 || offset + data.length > mem.size!) fail(CL.INVALID_VALUE);
        check(cl.enqueueWriteBuffer(q.host, mem.host, 1, offset, data.length, data, 0, null, null));
        return Buffer.alloc(0);
      }
      case Op.READ_BUFFER: {
        const q = this.obj(a.u64(), 'queue', CL.INVALID_COMMAND_QUEUE);
        const mem = this.obj(a.u64(), 'mem', CL.INVALID_MEM_OBJECT);
        const offset = a.size();
        const size = a.size();
        a.end();
        if (size === 0 || offset + size > mem.size! || size > MAX_FRAME - 64) fail(CL.INVALID_VALUE);
        const out = Buffer.alloc(size);
        check(cl.enqueueReadBuffer(q.host, mem.host, 1, offset, size, out, 0, null, null));
        return new Writer().bytes(out).done();
      }
      case Op.CREATE_PROGRAM: {
        const ctx = this.obj(a.u64(), 'context', CL.INVALID_CONTEXT);
        const src = a.bytes();
        a.end();
        if (src.length === 0 || src.length > MAX_SOURCE || src.includes(0)) fail(CL.INVALID_VALUE);
        if (sourceIncludes(src.toString('latin1'))) fail(CL.INVALID_VALUE);
        const prog = cl.createProgramWithSource(ctx.host, 1, [src.toString('utf8')], null, err);
        return this.token('program', prog, err, { devices: ctx.devices });
      }
      case Op.BUILD_PROGRAM: {
        const prog = this.obj(a.u64(), 'program', CL.INVALID_PROGRAM);
        const opts = a.bytes();
        a.end();
        if (opts.length > 4096 || opts.includes(0)) fail(CL.INVALID_BUILD_OPTIONS);
        const text = opts.toString('latin1');
        if (optionsReachFiles(text)) fail(CL.INVALID_BUILD_OPTIONS);
        check(cl.buildProgram(prog.host, 0, null, text, null, null));
        return Buffer.alloc(0);
      }
      case Op.PROGRAM_BUILD_INFO: {
        const prog = this.obj(a.u64(), 'program', CL.INVALID_PROGRAM);
        const dev = this.obj(a.u64(), 'device', CL.INVALID_DEVICE);
        const param = a.u32();
        a.end();
        return info((...x) => cl.getProgramBuildInfo(prog.host, dev.host, param, ...x));
      }
      case Op.CREATE_KERNEL: {
        const prog = this.obj(a.u64(), 'program', CL.INVALID_PROGRAM);
        const name = a.bytes();
        a.end();
        if (name.length === 0 || name.length > 256 || name.includes(0)) fail(CL.INVALID_VALUE);
        return this.token('kernel', cl.createKernel(prog.host, name.toString('latin1'), err), err);
      }
      case Op.SET_KERNEL_ARG: {
        const k = this.obj(a.u64(), 'kernel', CL.INVALID_KERNEL);
        const index = a.u32();
        const kind = a.u32();
        const size = a.size();
        const value = a.bytes();
        a.end();
        if (kind === ArgKind.VALUE) {
          if (size === 0 || size > MAX_ARG || value.length !== size) fail(CL.INVALID_ARG_SIZE);
          check(cl.setKernelArg(k.host, index, size, value));
        } else if (kind === ArgKind.MEM) {
          if (size !== 8 || value.length !== 8) fail(CL.INVALID_ARG_SIZE);
          const t = value.readBigUInt64LE(0);
          const host = t === 0n ? 0n : this.obj(t, 'mem', CL.INVALID_MEM_OBJECT).host;
          check(cl.setKernelArg(k.host, index, 8, pointerCell(host)));
        } else if (kind === ArgKind.LOCAL) {
          if (size === 0 || size > 2 ** 30 || value.length !== 0) fail(CL.INVALID_ARG_SIZE);
          check(cl.setKernelArg(k.host, index, size, null));
        } else fail(CL.INVALID_VALUE);
        return Buffer.alloc(0);
      }
      case Op.ENQUEUE_KERNEL: {
        const q = this.obj(a.u64(), 'queue', CL.INVALID_COMMAND_QUEUE);
        const k = this.obj(a.u64(), 'kernel', CL.INVALID_KERNEL);
        const dims = a.u32();
        const three = () => [a.size(), a.size(), a.size()];
        const [offset, global, local] = [three(), three(), three()];
        const wantEvent = a.more ? a.u32() : 0;
        a.end();
        if (wantEvent > 1) fail(CL.INVALID_VALUE);
        if (dims < 1 || dims > 3) fail(CL.INVALID_WORK_DIMENSION);
        const used = (v: number[]) => v.slice(0, dims);
        if (used(global).some((g) => g === 0 || g > 2 ** 32)) fail(CL.INVALID_VALUE);
        const noLocal = used(local).every((l) => l === 0);
        if (!noLocal && used(local).some((l) => l === 0 || l > 2 ** 16)) fail(CL.INVALID_VALUE);
        if (used(offset).some((o) => o > 2 ** 32)) fail(CL.INVALID_VALUE);
        const event = wantEvent ? Buffer.alloc(8) : null;
        check(cl.enqueueNDRangeKernel(q.host, k.host, dims, sizeArray(used(offset)), sizeArray(used(global)),
          noLocal ? null : sizeArray(used(local)), 0, null, event));
        if (event) return this.token('event', event.readBigUInt64LE(0), new Int32Array(1));
        return Buffer.alloc(0);
      }
      case Op.FINISH: {
        const q = this.obj(a.u64(), 'queue', CL.INVALID_COMMAND_QUEUE);
        a.end();
        check(cl.finish(q.host));
        return Buffer.alloc(0);
      }
      case Op.KERNEL_WORK_GROUP_INFO: {
        const k = this.obj(a.u64(), 'kernel', CL.INVALID_KERNEL);
        const dev = this.obj(a.u64(), 'device', CL.INVALID_DEVICE);
        const param = a.u32();
        a.end();
        if (param < 0x11b0 || param > 0x11b5) fail(CL.INVALID_VALUE);
        return info((...x) => cl.getKernelWorkGroupInfo(k.host, dev.host, param, ...x));
      }
      case Op.PROGRAM_INFO:
        return this.allowedInfo(a, 'program', CL.INVALID_PROGRAM, PROGRAM_INFO_OK, cl.getProgramInfo);
      case Op.KERNEL_INFO:
        return this.allowedInfo(a, 'kernel', CL.INVALID_KERNEL, KERNEL_INFO_OK, cl.getKernelInfo);
      case Op.MEM_INFO:
        return this.allowedInfo(a, 'mem', CL.INVALID_MEM_OBJECT, MEM_INFO_OK, cl.getMemObjectInfo);
      case Op.CONTEXT_INFO: {
        const token = a.u64();
        const ctx = this.obj(token, 'context', CL.INVALID_CONTEXT);
        const param = a.u32();
        a.end();
        if (param === CL_CONTEXT_DEVICES) {
          const v = Buffer.alloc(8 * ctx.devices!.length);
          ctx.devices!.forEach((d, i) => v.writeBigUInt64LE(d, 8 * i));
          return new Writer().bytes(v).done();
        }
        if (!CONTEXT_INFO_OK.has(param)) fail(CL.INVALID_VALUE);
        return info((...x) => cl.getContextInfo(ctx.host, param, ...x));
      }
      case Op.EVENT_PROFILING: {
        const e = this.obj(a.u64(), 'event', CL.INVALID_EVENT);
        const param = a.u32();
        a.end();
        if (param < 0x1280 || param > 0x1284) fail(CL.INVALID_VALUE); // QUEUED, SUBMIT, START, END, COMPLETE
        const out = Buffer.alloc(8);
        check(cl.getEventProfilingInfo(e.host, param, 8, out, null));
        return new Writer().u64(out.readBigUInt64LE(0)).done();
      }
      case Op.HELLO: {
        const process = a.more ? a.u64() : 0n;
        a.end();
        if (process !== 0n && process !== this.process) {
          this.endProcess();
          this.process = process;
        }
        return new Writer().u64(this.helper).u32(this.link).done();
      }
      case Op.WINDOW:
        a.end();
        return new Writer().u64(this.window?.size ?? 0n).done();
      case Op.CREATE_BUFFER_WINDOW:
        return this.createWindowBuffer(a, err);
      case Op.MAP_BUFFER:
      case Op.UNMAP:
        return this.mapOrUnmap(op, a, err);
      default:
        return fail(CL.INVALID_OPERATION);
    }
  }

  /** A buffer whose storage is a range of the window: the host's OpenCL uses base + offset (CL_MEM_USE_HOST_PTR). */
  private createWindowBuffer(a: Reader, err: Int32Array): Buffer {
    const ctx = this.obj(a.u64(), 'context', CL.INVALID_CONTEXT);
    const flags = a.u64();
    const offset = a.u64();
    const size = a.u64();
    a.end();
    const w = this.window ?? fail(CL.INVALID_OPERATION);
    if (flags & ~BUFFER_FLAGS_OK) fail(CL.INVALID_VALUE);
    if (size === 0n || size > BigInt(MAX_BUFFER)) fail(CL.INVALID_BUFFER_SIZE);
    if (!w.contains(offset, size)) fail(CL.INVALID_HOST_PTR);
    const hostFlags = (flags & ~CL_MEM_ALLOC_HOST_PTR) | CL_MEM_USE_HOST_PTR;
    const mem = this.cl.createBuffer(ctx.host, hostFlags, size, w.at(offset, size), err);
    return this.token('mem', mem, err, { size: Number(size), windowOffset: offset, maps: [] });
  }

  /** Maps (blocking) or unmaps a range of a window buffer. The host's OpenCL must answer a map of a USE_HOST_PTR
   * buffer with a pointer into its host_ptr, so the guest reads the same bytes at the same window offset. */
  private mapOrUnmap(op: number, a: Reader, err: Int32Array): Buffer {
    const q = this.obj(a.u64(), 'queue', CL.INVALID_COMMAND_QUEUE);
    const mem: Entry = this.obj(a.u64(), 'mem', CL.INVALID_MEM_OBJECT);
    const flags = op === Op.MAP_BUFFER ? a.u64() : 0n;
    const offset = a.u64();
    const size = op === Op.MAP_BUFFER ? a.u64() : 0n;
    a.end();
    const w = this.window;
    if (!w || mem.windowOffset === undefined) return fail(CL.INVALID_MEM_OBJECT);
    const maps = mem.maps!;
    if (op === Op.UNMAP) {
      if (offset >= BigInt(mem.size!)) fail(CL.INVALID_VALUE);
      const ptr = w.base + mem.windowOffset + offset;
      const i = maps.indexOf(ptr);
      if (i < 0) fail(CL.INVALID_VALUE);
      maps.splice(i, 1);
      check(this.cl.enqueueUnmapMemObject(q.host, mem.host, ptr, 0, null, null));
      return Buffer.alloc(0);
    }
    if (flags & ~MAP_FLAGS_OK || size === 0n || offset + size > BigInt(mem.size!)) fail(CL.INVALID_VALUE);
    if (maps.length >= MAX_MAPS) fail(CL.OUT_OF_HOST_MEMORY);
    const ptr = this.cl.enqueueMapBuffer(q.host, mem.host, 1, flags, offset, size, 0, null, null, err);
    if (err[0] !== CL.SUCCESS || ptr === null) return fail(err[0] || CL.MAP_FAILURE);
    if (BigInt(ptr) !== w.base + mem.windowOffset + offset) {
      // Not in place (an OpenCL that ignores USE_HOST_PTR's contract): the guest would see stale bytes.
      this.cl.enqueueUnmapMemObject(q.host, mem.host, ptr, 0, null, null);
      fail(CL.MAP_FAILURE);
    }
    maps.push(BigInt(ptr));
    return Buffer.alloc(0);
  }

  private allowedInfo(a: Reader, kind: HandleKind, code: number, ok: Set<number>, fn: ClApi['getMemObjectInfo']) {
    const o = this.obj(a.u64(), kind, code);
    const param = a.u32();
    a.end();
    if (!ok.has(param)) fail(CL.INVALID_VALUE);
    return info((...x) => fn(o.host, param, ...x));
  }

  /** Waits until every queue of the session has finished: no command of it runs on the device afterwards. */
  /** clFinish on every queue; returns how many failed (their commands may still run: a hold says so in the log). */
  finishAll(): number {
    let failed = 0;
    for (const [, q] of this.handles.entries()) if (q.kind === 'queue' && this.cl.finish(q.host) !== CL.SUCCESS) failed++;
    return failed;
  }

  private platformId?: bigint;

  private platform(): bigint {
    if (this.platformId === undefined) {
      const ids = new BigUint64Array(1);
      const n = new Uint32Array(1);
      check(this.cl.getPlatformIDs(1, ids, n));
      if (n[0] === 0) fail(CL.INVALID_PLATFORM);
      this.platformId = ids[0]!;
    }
    return this.platformId;
  }
}

/** An info query the OpenCL way: its size, then its value (capped at MAX_INFO), as a bytes result. */
function info(call: (size: number, value: Buffer | null, sizeRet: BigUint64Array | null) => number): Buffer {
  const n = new BigUint64Array(1);
  check(call(0, null, n));
  const size = Number(n[0]);
  if (size > MAX_INFO) fail(CL.OUT_OF_HOST_MEMORY);
  const v = Buffer.alloc(size);
  if (size) check(call(size, v, null));
  return new Writer().bytes(v).done();
}
