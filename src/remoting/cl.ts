// The host's OpenCL (libOpenCL.so.1, the ICD loader: PoCL on this machine, a GPU vendor's ICD elsewhere) through
// koffi. Handles are host pointers as BigInt; they never leave the helper (handles.ts gives the guest tokens).
import koffi from 'koffi';

type Fn = (...args: unknown[]) => number;
type PtrFn = (...args: unknown[]) => bigint | null;

export interface ClApi {
  getPlatformIDs: Fn;
  getPlatformInfo: Fn;
  getDeviceIDs: Fn;
  getDeviceInfo: Fn;
  createContext: PtrFn;
  createCommandQueue: PtrFn;
  createBuffer: PtrFn;
  enqueueWriteBuffer: Fn;
  enqueueReadBuffer: Fn;
  createProgramWithSource: PtrFn;
  buildProgram: Fn;
  getProgramBuildInfo: Fn;
  getProgramInfo: Fn;
  createKernel: PtrFn;
  setKernelArg: Fn;
  enqueueNDRangeKernel: Fn;
  finish: Fn;
  getKernelWorkGroupInfo: Fn;
  getKernelInfo: Fn;
  getMemObjectInfo: Fn;
  getContextInfo: Fn;
  enqueueMapBuffer: PtrFn;
  enqueueUnmapMemObject: Fn;
  getEventProfilingInfo: Fn;
  retain: Record<HandleKind, Fn>;
  release: Record<HandleKind, Fn>;
}

export type HandleKind = 'device' | 'context' | 'queue' | 'mem' | 'program' | 'kernel' | 'event';

let api: ClApi | undefined;

/** Loads libOpenCL.so.1 once (throws if the host has no OpenCL: install ocl-icd-libopencl1 and an ICD). */
export function clApi(): ClApi {
  if (api) return api;
  const lib = koffi.load('libOpenCL.so.1');
  const f = (proto: string) => lib.func(proto) as unknown as Fn;
  const fp = (proto: string) => lib.func(proto) as unknown as PtrFn;
  const info = (name: string) => f(`int ${name}(void *, uint32_t, size_t, _Out_ void *, _Out_ size_t *)`);
  const info2 = (name: string) => f(`int ${name}(void *, void *, uint32_t, size_t, _Out_ void *, _Out_ size_t *)`);
  const one = (name: string) => f(`int ${name}(void *)`);
  api = {
    getPlatformIDs: f('int clGetPlatformIDs(uint32_t, _Out_ void *, _Out_ uint32_t *)'),
    getPlatformInfo: info('clGetPlatformInfo'),
    getDeviceIDs: f('int clGetDeviceIDs(void *, uint64_t, uint32_t, _Out_ void *, _Out_ uint32_t *)'),
    getDeviceInfo: info('clGetDeviceInfo'),
    createContext: fp('void *clCreateContext(void *, uint32_t, void *, void *, void *, _Out_ int32_t *)'),
    createCommandQueue: fp('void *clCreateCommandQueue(void *, void *, uint64_t, _Out_ int32_t *)'),
    createBuffer: fp('void *clCreateBuffer(void *, uint64_t, size_t, void *, _Out_ int32_t *)'),
    enqueueWriteBuffer: f(
      'int clEnqueueWriteBuffer(void *, void *, uint32_t, size_t, size_t, void *, uint32_t, void *, void *)',
    ),
    enqueueReadBuffer: f(
      'int clEnqueueReadBuffer(void *, void *, uint32_t, size_t, size_t, _Out_ void *, uint32_t, void *, void *)',
    ),
    createProgramWithSource: fp('void *clCreateProgramWithSource(void *, uint32_t, const char **, void *, _Out_ int32_t *)'),
    buildProgram: f('int clBuildProgram(void *, uint32_t, void *, const char *, void *, void *)'),
    getProgramBuildInfo: info2('clGetProgramBuildInfo'),
    getProgramInfo: info('clGetProgramInfo'),
    createKernel: fp('void *clCreateKernel(void *, const char *, _Out_ int32_t *)'),
    setKernelArg: f('int clSetKernelArg(void *, uint32_t, size_t, void *)'),
    enqueueNDRangeKernel: f(
      'int clEnqueueNDRangeKernel(void *, void *, uint32_t, void *, void *, void *, uint32_t, void *, void *)',
    ),
    finish: one('clFinish'),
    getKernelWorkGroupInfo: info2('clGetKernelWorkGroupInfo'),
    getKernelInfo: info('clGetKernelInfo'),
    getMemObjectInfo: info('clGetMemObjectInfo'),
    getContextInfo: info('clGetContextInfo'),
    enqueueMapBuffer: fp(
      'void *clEnqueueMapBuffer(void *, void *, uint32_t, uint64_t, size_t, size_t, uint32_t, void *, void *, '
      + '_Out_ int32_t *)',
    ),
    enqueueUnmapMemObject: f('int clEnqueueUnmapMemObject(void *, void *, void *, uint32_t, void *, void *)'),
    getEventProfilingInfo: info('clGetEventProfilingInfo'),
    retain: {
      device: one('clRetainDevice'),
      context: one('clRetainContext'),
      queue: one('clRetainCommandQueue'),
      mem: one('clRetainMemObject'),
      program: one('clRetainProgram'),
      kernel: one('clRetainKernel'),
      event: one('clRetainEvent'),
    },
    release: {
      device: one('clReleaseDevice'),
      context: one('clReleaseContext'),
      queue: one('clReleaseCommandQueue'),
      mem: one('clReleaseMemObject'),
      program: one('clReleaseProgram'),
      kernel: one('clReleaseKernel'),
      event: one('clReleaseEvent'),
    },
  };
  return api;
}

/** A pointer-sized cell holding `p` (what clSetKernelArg takes for a cl_mem argument). */
export function pointerCell(p: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(p);
  return b;
}

/** An array of size_t values, or null for none. */
export function sizeArray(values: number[] | null): Buffer | null {
  if (!values) return null;
  const b = Buffer.alloc(8 * values.length);
  values.forEach((v, i) => b.writeBigUInt64LE(BigInt(v), 8 * i));
  return b;
}
