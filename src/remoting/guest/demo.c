/* oriel-cl-demo: a vector addition, a SAXPY and a matrix multiplication through whatever OpenCL the ICD loader
 * finds, printing a hash of each result, so the same binary run in a guest (remoted) and on the host (directly)
 * can be compared line by line; then a kernel with a syntax error (its build status) and an out-of-range read.
 * Then zero copy: a CL_MEM_ALLOC_HOST_PTR buffer (in the VM's window when remoted) written and read by mapping, and
 * a USE_HOST_PTR buffer whose map must return the caller's memory.
 * Usage: oriel-cl-demo [matrix size (default 256)] [null-kernel calls to time (default 0)]
 *        oriel-cl-demo token        (prints the remote token of a buffer it leaves alive)
 *        oriel-cl-demo probe TOKEN  (asks the host about a buffer by that token: the status it gets)
 *        oriel-cl-demo recover [STOPFILE]  (vector additions from scratch, again and again, until one fails: then
 *          "lost CODE", and one more from scratch, "recovered 0 vadd ..."; or, after the first, until STOPFILE
 *          exists: "stopped after N")
 * token and probe peek into the Oriel ICD's objects (tests of isolation between VMs): remoted only. */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *SRC =
    "__kernel void vadd(__global const float *a, __global const float *b, __global float *c) {\n"
    "  size_t i = get_global_id(0); c[i] = a[i] + b[i];\n"
    "}\n"
    "__kernel void saxpy(float alpha, __global const float *x, __global float *y) {\n"
    "  size_t i = get_global_id(0); y[i] = alpha * x[i] + y[i];\n"
    "}\n"
    "__kernel void matmul(int n, __global const float *a, __global const float *b, __global float *c) {\n"
    "  int row = get_global_id(1), col = get_global_id(0); float s = 0;\n"
    "  for (int k = 0; k < n; k++) s += a[row * n + k] * b[k * n + col];\n"
    "  c[row * n + col] = s;\n"
    "}\n"
    "__kernel void nothing(void) {}\n"
    "__kernel void mark(__global int *a) { size_t i = get_global_id(0); a[i] ^= 0x5a5a0000; }\n";

#define CHECK(x)                                                         \
  do {                                                                   \
    cl_int st_ = (x);                                                    \
    if (st_ != CL_SUCCESS) {                                             \
      printf("error %d at line %d: %s\n", st_, __LINE__, #x);           \
      exit(1);                                                           \
    }                                                                    \
  } while (0)

static cl_context ctx;
static cl_command_queue q;

static uint64_t fnv(const void *p, size_t n) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < n; i++) h = (h ^ ((const uint8_t *)p)[i]) * 1099511628211ull;
  return h;
}

/* zc: CL_MEM_ALLOC_HOST_PTR (in the window when remoted: no copy on the port); else an ordinary buffer. */
static cl_mem buffer(size_t bytes, void *init, int zc) {
  cl_int err;
  cl_mem_flags f = CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0) | (zc ? CL_MEM_ALLOC_HOST_PTR : 0);
  cl_mem m = clCreateBuffer(ctx, f, bytes, init, &err);
  CHECK(err);
  return m;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

/* A buffer object of the Oriel ICD starts with its dispatch table pointer, then its u64 token (oriel.h). */
static int token_mode(int argc, char **argv, cl_device_id dev) {
  cl_int err;
  cl_mem m = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 64, NULL, &err);
  CHECK(err);
  if (strcmp(argv[1], "token") == 0) {
    printf("token %llx\n", (unsigned long long)((uint64_t *)m)[1]); /* left alive: the host keeps it */
    return 0;
  }
  if (argc < 3) return 2;
  uint64_t fake[12];
  cl_uint count = 7;
  memcpy(fake, m, 96); /* a valid-looking object (struct _cl_mem is 96 bytes) holding this process's own token ... */
  printf("self %d\n", clGetMemObjectInfo((cl_mem)fake, CL_MEM_MAP_COUNT, sizeof count, &count, NULL));
  fake[1] = strtoull(argv[2], NULL, 16); /* ... then the other token */
  printf("probe %d\n", clGetMemObjectInfo((cl_mem)fake, CL_MEM_MAP_COUNT, sizeof count, &count, NULL));
  (void)dev;
  return 0;
}

/* Zero copy: written by mapping, marked by a kernel, read by mapping; hashes as the host's. */
static void zero_copy(cl_program prog) {
  enum { Z = 1 << 16 };
  cl_int err;
  size_t global = Z;
  cl_kernel mark = clCreateKernel(prog, "mark", &err);
  CHECK(err);
  cl_mem m = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, Z * 4, NULL, &err);
  CHECK(err);
  int *p = clEnqueueMapBuffer(q, m, CL_TRUE, CL_MAP_WRITE_INVALIDATE_REGION, 0, Z * 4, 0, NULL, NULL, &err);
  CHECK(err);
  for (int i = 0; i < Z; i++) p[i] = i;
  CHECK(clEnqueueUnmapMemObject(q, m, p, 0, NULL, NULL));
  CHECK(clSetKernelArg(mark, 0, sizeof m, &m));
  CHECK(clEnqueueNDRangeKernel(q, mark, 1, NULL, &global, NULL, 0, NULL, NULL));
  p = clEnqueueMapBuffer(q, m, CL_TRUE, CL_MAP_READ, 0, Z * 4, 0, NULL, NULL, &err);
  CHECK(err);
  printf("zerocopy %016llx p[3]=%x\n", (unsigned long long)fnv(p, Z * 4), p[3]);
  CHECK(clEnqueueUnmapMemObject(q, m, p, 0, NULL, NULL));
  int part[4];
  CHECK(clEnqueueReadBuffer(q, m, CL_TRUE, 16, sizeof part, part, 0, NULL, NULL));
  printf("zeroread %x %x\n", part[0], part[3]);
  /* USE_HOST_PTR: the map is the caller's memory, holding the kernel's result. */
  static int mine[Z];
  for (int i = 0; i < Z; i++) mine[i] = 3 * i;
  cl_mem u = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR, sizeof mine, mine, &err);
  CHECK(err);
  CHECK(clSetKernelArg(mark, 0, sizeof u, &u));
  CHECK(clEnqueueNDRangeKernel(q, mark, 1, NULL, &global, NULL, 0, NULL, NULL));
  int *up = clEnqueueMapBuffer(q, u, CL_TRUE, CL_MAP_READ, 0, sizeof mine, 0, NULL, NULL, &err);
  CHECK(err);
  printf("usehostptr %d %016llx\n", up == mine, (unsigned long long)fnv(up, sizeof mine));
  CHECK(clEnqueueUnmapMemObject(q, u, up, 0, NULL, NULL));
  clReleaseMemObject(m), clReleaseMemObject(u), clReleaseKernel(mark);
}

#define TRY(x)                                                   \
  do {                                                           \
    if ((st = (x)) != CL_SUCCESS) {                              \
      printf("failed %d at line %d: %s\n", st, __LINE__, #x);     \
      goto out;                                                  \
    }                                                            \
  } while (0)

/* One vector addition from clGetPlatformIDs on, everything released after: its status and result hash. */
static cl_int vadd_from_scratch(uint64_t *hash) {
  enum { V = 1024 };
  static float a[V], b[V], c[V];
  cl_platform_id platform;
  cl_device_id dev;
  cl_context cx = NULL;
  cl_command_queue cq = NULL;
  cl_program prog = NULL;
  cl_kernel k = NULL;
  cl_mem m[3] = {NULL, NULL, NULL};
  cl_int st;
  size_t global = V;
  for (int i = 0; i < V; i++) a[i] = i * 0.5f, b[i] = (V - i) * 0.25f;
  TRY(clGetPlatformIDs(1, &platform, NULL));
  TRY(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &dev, NULL));
  cx = clCreateContext(NULL, 1, &dev, NULL, NULL, &st);
  TRY(st);
  cq = clCreateCommandQueue(cx, dev, 0, &st);
  TRY(st);
  prog = clCreateProgramWithSource(cx, 1, &SRC, NULL, &st);
  TRY(st);
  TRY(clBuildProgram(prog, 1, &dev, "", NULL, NULL));
  k = clCreateKernel(prog, "vadd", &st);
  TRY(st);
  for (int i = 0; i < 3; i++) {
    m[i] = clCreateBuffer(cx, CL_MEM_READ_WRITE | (i < 2 ? CL_MEM_COPY_HOST_PTR : 0), sizeof a, i == 2 ? NULL : i ? b : a, &st);
    TRY(st);
    TRY(clSetKernelArg(k, i, sizeof m[i], &m[i]));
  }
  TRY(clEnqueueNDRangeKernel(cq, k, 1, NULL, &global, NULL, 0, NULL, NULL));
  TRY(clEnqueueReadBuffer(cq, m[2], CL_TRUE, 0, sizeof c, c, 0, NULL, NULL));
  *hash = fnv(c, sizeof c);
out:;
  /* The releases count too: a restore from a checkpoint taken during one fails it (the helper is another), and a
   * program that ignored that would go on against the new helper without ever saying its call was lost. */
  cl_int rel[7] = {0};
  for (int i = 0; i < 3; i++) if (m[i]) rel[i] = clReleaseMemObject(m[i]);
  if (k) rel[3] = clReleaseKernel(k);
  if (prog) rel[4] = clReleaseProgram(prog);
  if (cq) rel[5] = clReleaseCommandQueue(cq);
  if (cx) rel[6] = clReleaseContext(cx);
  for (int i = 0; i < 7 && st == CL_SUCCESS; i++) st = rel[i];
  return st;
}

/* A program whose calls fail under it (a restore from a checkpoint taken mid-call) starts over and goes on. */
static int recover_mode(const char *stopfile) {
  uint64_t hash = 0;
  for (unsigned long n = 0;; n++) {
    if (n > 0 && stopfile && access(stopfile, F_OK) == 0) {
      printf("stopped after %lu\n", n);
      return 0;
    }
    cl_int st = vadd_from_scratch(&hash);
    if (n == 0 && st == CL_SUCCESS) printf("vadd %016llx\n", (unsigned long long)hash);
    fflush(stdout);
    if (st == CL_SUCCESS) continue;
    printf("lost %d after %lu\n", st, n);
    st = vadd_from_scratch(&hash);
    printf("recovered %d vadd %016llx\n", st, (unsigned long long)hash);
    return st == CL_SUCCESS ? 0 : 1;
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "recover") == 0) return recover_mode(argc > 2 ? argv[2] : NULL);
  int n = argc > 1 ? atoi(argv[1]) : 256, calls = argc > 2 ? atoi(argv[2]) : 0;
  cl_platform_id platform;
  cl_device_id dev;
  cl_int err;
  char name[256];
  CHECK(clGetPlatformIDs(1, &platform, NULL));
  CHECK(clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof name, name, NULL));
  printf("platform %s\n", name);
  CHECK(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &dev, NULL));
  CHECK(clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof name, name, NULL));
  printf("device %s\n", name);
  ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  CHECK(err);
  q = clCreateCommandQueue(ctx, dev, CL_QUEUE_PROFILING_ENABLE, &err);
  CHECK(err);
  if (argc > 1 && (strcmp(argv[1], "token") == 0 || strcmp(argv[1], "probe") == 0)) return token_mode(argc, argv, dev);
  cl_program prog = clCreateProgramWithSource(ctx, 1, &SRC, NULL, &err);
  CHECK(err);
  CHECK(clBuildProgram(prog, 1, &dev, "", NULL, NULL));

  enum { V = 4096 };
  static float a[V], b[V], c[V];
  for (int i = 0; i < V; i++) a[i] = i * 0.5f, b[i] = (V - i) * 0.25f;
  cl_mem ma = buffer(sizeof a, a, 0), mb = buffer(sizeof b, b, 0), mc = buffer(sizeof c, NULL, 0);
  cl_kernel vadd = clCreateKernel(prog, "vadd", &err);
  CHECK(err);
  CHECK(clSetKernelArg(vadd, 0, sizeof ma, &ma));
  CHECK(clSetKernelArg(vadd, 1, sizeof mb, &mb));
  CHECK(clSetKernelArg(vadd, 2, sizeof mc, &mc));
  size_t global = V;
  CHECK(clEnqueueNDRangeKernel(q, vadd, 1, NULL, &global, NULL, 0, NULL, NULL));
  CHECK(clEnqueueReadBuffer(q, mc, CL_TRUE, 0, sizeof c, c, 0, NULL, NULL));
  printf("vadd %016llx c[100]=%g\n", (unsigned long long)fnv(c, sizeof c), c[100]);

  cl_kernel saxpy = clCreateKernel(prog, "saxpy", &err);
  CHECK(err);
  float alpha = 2.5f;
  cl_event done;
  CHECK(clSetKernelArg(saxpy, 0, sizeof alpha, &alpha));
  CHECK(clSetKernelArg(saxpy, 1, sizeof ma, &ma));
  CHECK(clSetKernelArg(saxpy, 2, sizeof mb, &mb));
  CHECK(clEnqueueNDRangeKernel(q, saxpy, 1, NULL, &global, NULL, 0, NULL, &done));
  CHECK(clWaitForEvents(1, &done));
  CHECK(clReleaseEvent(done));
  CHECK(clEnqueueReadBuffer(q, mb, CL_TRUE, 0, sizeof b, b, 0, NULL, NULL));
  printf("saxpy %016llx y[100]=%g\n", (unsigned long long)fnv(b, sizeof b), b[100]);

  size_t bytes = (size_t)n * n * sizeof(float);
  float *x = malloc(bytes), *y = malloc(bytes), *z = malloc(bytes);
  for (int i = 0; i < n * n; i++) x[i] = (float)(i % 17) * 0.125f, y[i] = (float)(i % 13) * 0.25f;
  cl_mem mx = buffer(bytes, x, 1), my = buffer(bytes, y, 1), mz = buffer(bytes, NULL, 1);
  cl_kernel mm = clCreateKernel(prog, "matmul", &err);
  CHECK(err);
  CHECK(clSetKernelArg(mm, 0, sizeof n, &n));
  CHECK(clSetKernelArg(mm, 1, sizeof mx, &mx));
  CHECK(clSetKernelArg(mm, 2, sizeof my, &my));
  CHECK(clSetKernelArg(mm, 3, sizeof mz, &mz));
  size_t g2[2] = {n, n};
  double t0 = now();
  cl_event mmev;
  CHECK(clEnqueueNDRangeKernel(q, mm, 2, NULL, g2, NULL, 0, NULL, &mmev));
  CHECK(clFinish(q));
  double t1 = now();
  /* The kernel's own times, from its event (the host's, through the ICD). */
  cl_ulong start = 0, end = 0;
  CHECK(clGetEventProfilingInfo(mmev, CL_PROFILING_COMMAND_START, sizeof start, &start, NULL));
  CHECK(clGetEventProfilingInfo(mmev, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL));
  printf("profile %s\n", start > 0 && end >= start ? "ok" : "bad");
  fprintf(stderr, "time matmul kernel (profiled) %.6f s\n", (end - start) / 1e9);
  CHECK(clReleaseEvent(mmev));
  CHECK(clEnqueueReadBuffer(q, mz, CL_TRUE, 0, bytes, z, 0, NULL, NULL));
  printf("matmul %d %016llx\n", n, (unsigned long long)fnv(z, bytes));
  fprintf(stderr, "time matmul %.6f s\n", t1 - t0);

  zero_copy(prog);

  /* Errors come back as OpenCL codes. */
  const char *bad = "__kernel void broken(__global float *a) { a[0] = ; }";
  cl_program bp = clCreateProgramWithSource(ctx, 1, &bad, NULL, &err);
  CHECK(err);
  printf("badbuild %d\n", clBuildProgram(bp, 1, &dev, "", NULL, NULL));
  size_t logsize = 0;
  CHECK(clGetProgramBuildInfo(bp, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &logsize));
  printf("buildlog %s\n", logsize > 1 ? "present" : "empty");
  printf("outofrange %d\n", clEnqueueReadBuffer(q, mc, CL_TRUE, sizeof c - 4, 8, c, 0, NULL, NULL));

  if (calls > 0) {
    cl_kernel nk = clCreateKernel(prog, "nothing", &err);
    CHECK(err);
    size_t one = 1;
    double s = now();
    for (int i = 0; i < calls; i++) CHECK(clEnqueueNDRangeKernel(q, nk, 1, NULL, &one, NULL, 0, NULL, NULL));
    CHECK(clFinish(q));
    fprintf(stderr, "time nullkernel %.3f us/call\n", (now() - s) / calls * 1e6);
    clReleaseKernel(nk);
  }
  clReleaseProgram(bp);
  clReleaseKernel(vadd), clReleaseKernel(saxpy), clReleaseKernel(mm);
  clReleaseMemObject(ma), clReleaseMemObject(mb), clReleaseMemObject(mc);
  clReleaseMemObject(mx), clReleaseMemObject(my), clReleaseMemObject(mz);
  clReleaseProgram(prog);
  clReleaseCommandQueue(q);
  clReleaseContext(ctx);
  free(x), free(y), free(z);
  printf("ok\n");
  return 0;
}
