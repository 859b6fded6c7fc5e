/* oriel-cl-bench: what OpenCL remoting costs, run the same in a guest (remoted) and on the host (directly), for
 * bench/opencl.ts. Prints one line per figure:
 *   null <µs per enqueue of an empty kernel>
 *   bw copy|zc <MiB> <MB/s>   host-to-device: clEnqueueWriteBuffer of an ordinary buffer (copy: through the port when
 *                             remoted) | map, memcpy, unmap of a CL_MEM_ALLOC_HOST_PTR buffer (zc: the window)
 *   matmul <kernel s> <total s>  1024×1024, kernel alone and with its buffers written and the result read (zc)
 * Usage: oriel-cl-bench [largest MiB (default 256)] [largest MiB for the copy path (default: the same)] */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *SRC =
    "__kernel void nothing(void) {}\n"
    "__kernel void matmul(int n, __global const float *a, __global const float *b, __global float *c) {\n"
    "  int row = get_global_id(1), col = get_global_id(0); float s = 0;\n"
    "  for (int k = 0; k < n; k++) s += a[row * n + k] * b[k * n + col];\n"
    "  c[row * n + col] = s;\n"
    "}\n";

#define CHECK(x)                                                   \
  do {                                                             \
    cl_int st_ = (x);                                              \
    if (st_ != CL_SUCCESS) {                                       \
      printf("error %d at line %d: %s\n", st_, __LINE__, #x);     \
      exit(1);                                                     \
    }                                                              \
  } while (0)

static cl_context ctx;
static cl_command_queue q;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static cl_mem zc_buffer(size_t bytes, const void *init) {
  cl_int err;
  cl_mem m = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, bytes, NULL, &err);
  CHECK(err);
  if (init) {
    void *p = clEnqueueMapBuffer(q, m, CL_TRUE, CL_MAP_WRITE_INVALIDATE_REGION, 0, bytes, 0, NULL, NULL, &err);
    CHECK(err);
    memcpy(p, init, bytes);
    CHECK(clEnqueueUnmapMemObject(q, m, p, 0, NULL, NULL));
  }
  return m;
}

static void bandwidth(size_t mib, const uint8_t *src, int copy) {
  size_t bytes = mib << 20;
  cl_int err;
  double best = 1e9;
  for (int rep = 0; rep < (mib <= 16 ? 3 : 1); rep++) {
    cl_mem m = copy ? clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, NULL, &err) : zc_buffer(bytes, NULL);
    if (copy) CHECK(err);
    CHECK(clFinish(q));
    double t0 = now();
    if (copy) {
      CHECK(clEnqueueWriteBuffer(q, m, CL_TRUE, 0, bytes, src, 0, NULL, NULL));
    } else {
      void *p = clEnqueueMapBuffer(q, m, CL_TRUE, CL_MAP_WRITE_INVALIDATE_REGION, 0, bytes, 0, NULL, NULL, &err);
      CHECK(err);
      memcpy(p, src, bytes);
      CHECK(clEnqueueUnmapMemObject(q, m, p, 0, NULL, NULL));
    }
    CHECK(clFinish(q));
    double t = now() - t0;
    if (t < best) best = t;
    CHECK(clReleaseMemObject(m));
  }
  printf("bw %s %zu %.1f\n", copy ? "copy" : "zc", mib, bytes / best / 1e6);
  fflush(stdout);
}

int main(int argc, char **argv) {
  size_t max = argc > 1 ? strtoul(argv[1], NULL, 10) : 256, maxcopy = argc > 2 ? strtoul(argv[2], NULL, 10) : max;
  cl_platform_id platform;
  cl_device_id dev;
  cl_int err;
  CHECK(clGetPlatformIDs(1, &platform, NULL));
  CHECK(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &dev, NULL));
  ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
  CHECK(err);
  q = clCreateCommandQueue(ctx, dev, 0, &err);
  CHECK(err);
  cl_program prog = clCreateProgramWithSource(ctx, 1, &SRC, NULL, &err);
  CHECK(err);
  CHECK(clBuildProgram(prog, 1, &dev, "", NULL, NULL));

  cl_kernel nk = clCreateKernel(prog, "nothing", &err);
  CHECK(err);
  size_t one = 1;
  int calls = 2000;
  for (int i = 0; i < 50; i++) CHECK(clEnqueueNDRangeKernel(q, nk, 1, NULL, &one, NULL, 0, NULL, NULL));
  CHECK(clFinish(q));
  double t0 = now();
  for (int i = 0; i < calls; i++) CHECK(clEnqueueNDRangeKernel(q, nk, 1, NULL, &one, NULL, 0, NULL, NULL));
  CHECK(clFinish(q));
  printf("null %.1f\n", (now() - t0) / calls * 1e6);
  fflush(stdout);

  uint8_t *src = malloc(max << 20);
  if (!src) return 1;
  for (size_t i = 0; i < max << 20; i++) src[i] = (uint8_t)(i * 7);
  for (size_t mib = 1; mib <= max; mib *= 4) {
    if (mib <= maxcopy) bandwidth(mib, src, 1);
    bandwidth(mib, src, 0);
    if (mib < max && mib * 4 > max) mib = max / 4; /* the largest size too, when not a power of 4 */
  }
  free(src);

  int n = 1024;
  size_t bytes = (size_t)n * n * sizeof(float);
  float *x = malloc(bytes), *y = malloc(bytes), *z = malloc(bytes);
  for (int i = 0; i < n * n; i++) x[i] = (float)(i % 17) * 0.125f, y[i] = (float)(i % 13) * 0.25f;
  cl_kernel mm = clCreateKernel(prog, "matmul", &err);
  CHECK(err);
  double s0 = now();
  cl_mem mx = zc_buffer(bytes, x), my = zc_buffer(bytes, y), mz = zc_buffer(bytes, NULL);
  CHECK(clSetKernelArg(mm, 0, sizeof n, &n));
  CHECK(clSetKernelArg(mm, 1, sizeof mx, &mx));
  CHECK(clSetKernelArg(mm, 2, sizeof my, &my));
  CHECK(clSetKernelArg(mm, 3, sizeof mz, &mz));
  size_t g2[2] = {n, n};
  CHECK(clFinish(q));
  double k0 = now();
  CHECK(clEnqueueNDRangeKernel(q, mm, 2, NULL, g2, NULL, 0, NULL, NULL));
  CHECK(clFinish(q));
  double k1 = now();
  CHECK(clEnqueueReadBuffer(q, mz, CL_TRUE, 0, bytes, z, 0, NULL, NULL));
  printf("matmul %.3f %.3f\n", k1 - k0, now() - s0);
  return 0;
}
