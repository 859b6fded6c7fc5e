/* The Oriel OpenCL ICD: the calls a program makes are sent to the host helper (src/remoting) and answered there by
 * the host's OpenCL. Each object holds the host's token for it. Only the calls below are remoted; every other
 * dispatch slot answers CL_INVALID_OPERATION (dispatch.gen.c, generated from CL/cl_icd.h). Enqueued commands run in
 * order on the host; their events are local and complete once the queue has finished (clFinish on the host). */
#include "dispatch.gen.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

static struct _cl_platform_id platform = {&oriel_dispatch};
static pthread_mutex_t objects_lock = PTHREAD_MUTEX_INITIALIZER;
static struct _cl_device_id *devices[MAX_DEVICES];
static cl_uint ndevices;
/* Live buffers, to tell a cl_mem kernel argument from an 8-byte value without dereferencing anything. */
static cl_mem *mems;
static size_t nmems, capmems;

static cl_int call0(uint16_t op, struct msg *req) {
  struct msg resp;
  cl_int st = oriel_call(op, req, &resp);
  msg_free(&resp);
  return st;
}

static cl_int call_token(uint16_t op, struct msg *req, uint64_t *token) {
  struct msg resp;
  cl_int st = oriel_call(op, req, &resp);
  if (st == CL_SUCCESS) {
    *token = msg_get_u64(&resp);
    if (resp.failed) st = CL_OUT_OF_RESOURCES;
  }
  msg_free(&resp);
  return st;
}

/* An info query answered by the host: the value comes back whole and is copied out here. */
static cl_int call_info(uint16_t op, struct msg *req, size_t size, void *out, size_t *size_ret) {
  struct msg resp;
  cl_int st = oriel_call(op, req, &resp);
  if (st == CL_SUCCESS) {
    size_t n;
    const uint8_t *v = msg_get_bytes(&resp, &n);
    st = resp.failed ? CL_OUT_OF_RESOURCES : oriel_info(v, n, size, out, size_ret);
  }
  msg_free(&resp);
  return st;
}

static cl_int release_remote(uint64_t token) {
  struct msg req = {0};
  msg_u64(&req, token);
  return call0(OP_RELEASE, &req);
}

static cl_int retain_remote(uint64_t token) {
  struct msg req = {0};
  msg_u64(&req, token);
  return call0(OP_RETAIN, &req);
}

static void *new_object(size_t size, uint64_t token, uint32_t magic) {
  struct _cl_device_id *o = calloc(1, size);
  if (!o) return NULL;
  o->dispatch = &oriel_dispatch, o->token = token, o->refs = 1, o->magic = magic;
  return o;
}

static cl_device_id device_for(uint64_t token) {
  pthread_mutex_lock(&objects_lock);
  cl_device_id d = NULL;
  for (cl_uint i = 0; i < ndevices; i++) if (devices[i]->token == token) d = devices[i];
  if (!d && ndevices < MAX_DEVICES && (d = new_object(sizeof *d, token, MAGIC_DEVICE))) devices[ndevices++] = d;
  pthread_mutex_unlock(&objects_lock);
  return d;
}

/* ---- platform and devices ---- */

EXPORT cl_int clIcdGetPlatformIDsKHR(cl_uint n, cl_platform_id *platforms, cl_uint *num) {
  if ((!platforms && !num) || (platforms && !n)) return CL_INVALID_VALUE;
  if (platforms) platforms[0] = &platform;
  if (num) *num = 1;
  return CL_SUCCESS;
}

cl_int oriel_clGetPlatformIDs(cl_uint n, cl_platform_id *platforms, cl_uint *num) {
  return clIcdGetPlatformIDsKHR(n, platforms, num);
}

cl_int oriel_clGetPlatformInfo(cl_platform_id p, cl_platform_info param, size_t size, void *out, size_t *size_ret) {
  if (p && p != &platform) return CL_INVALID_PLATFORM;
  if (param == CL_PLATFORM_ICD_SUFFIX_KHR) return oriel_info("ORIEL", 6, size, out, size_ret);
  if (param == CL_PLATFORM_NAME || param == CL_PLATFORM_VENDOR) {
    char buf[512] = "Oriel remote: ";
    size_t n, pre = strlen(buf);
    cl_int st;
    struct msg req = {0};
    msg_u32(&req, param);
    if ((st = call_info(OP_PLATFORM_INFO, &req, sizeof buf - pre, buf + pre, &n)) != CL_SUCCESS) return st;
    return oriel_info(buf, strnlen(buf, sizeof buf - 1) + 1, size, out, size_ret);
  }
  struct msg req = {0};
  msg_u32(&req, param);
  return call_info(OP_PLATFORM_INFO, &req, size, out, size_ret);
}

EXPORT cl_int clGetPlatformInfo(cl_platform_id p, cl_platform_info param, size_t size, void *out, size_t *size_ret) {
  return oriel_clGetPlatformInfo(p, param, size, out, size_ret);
}

cl_int oriel_clGetDeviceIDs(cl_platform_id p, cl_device_type type, cl_uint n, cl_device_id *out, cl_uint *num) {
  if (p && p != &platform) return CL_INVALID_PLATFORM;
  if ((!out && !num) || (out && !n)) return CL_INVALID_VALUE;
  struct msg req = {0}, resp;
  msg_u64(&req, type);
  cl_int st = oriel_call(OP_DEVICE_IDS, &req, &resp);
  if (st == CL_SUCCESS) {
    cl_uint count = msg_get_u32(&resp);
    for (cl_uint i = 0; i < count && !resp.failed; i++) {
      cl_device_id d = device_for(msg_get_u64(&resp));
      if (!d) st = CL_OUT_OF_HOST_MEMORY;
      else if (out && i < n) out[i] = d;
    }
    if (resp.failed) st = CL_OUT_OF_RESOURCES;
    if (st == CL_SUCCESS && count == 0) st = CL_DEVICE_NOT_FOUND;
    if (st == CL_SUCCESS && num) *num = count;
  }
  msg_free(&resp);
  return st;
}

cl_int oriel_clGetDeviceInfo(cl_device_id d, cl_device_info param, size_t size, void *out, size_t *size_ret) {
  if (!VALID(d, MAGIC_DEVICE)) return CL_INVALID_DEVICE;
  if (param == CL_DEVICE_PLATFORM) {
    cl_platform_id p = &platform;
    return oriel_info(&p, sizeof p, size, out, size_ret);
  }
  struct msg req = {0};
  msg_u64(&req, d->token);
  msg_u32(&req, param);
  return call_info(OP_DEVICE_INFO, &req, size, out, size_ret);
}

cl_int oriel_clRetainDevice(cl_device_id d) { return VALID(d, MAGIC_DEVICE) ? CL_SUCCESS : CL_INVALID_DEVICE; }
cl_int oriel_clReleaseDevice(cl_device_id d) { return VALID(d, MAGIC_DEVICE) ? CL_SUCCESS : CL_INVALID_DEVICE; }

/* ---- contexts ---- */

static int properties_ok(const cl_context_properties *props) {
  for (; props && props[0]; props += 2)
    if (props[0] != CL_CONTEXT_PLATFORM || (props[1] && (cl_platform_id)props[1] != &platform)) return 0;
  return 1;
}

cl_context oriel_clCreateContext(const cl_context_properties *props, cl_uint n, const cl_device_id *devs,
                                 void (*notify)(const char *, const void *, size_t, void *), void *user,
                                 cl_int *err) {
  cl_int st = CL_SUCCESS;
  cl_context c = NULL;
  (void)notify, (void)user;
  if (!properties_ok(props)) st = CL_INVALID_PROPERTY;
  else if (!n || !devs) st = CL_INVALID_VALUE;
  for (cl_uint i = 0; st == CL_SUCCESS && i < n; i++) if (!VALID(devs[i], MAGIC_DEVICE)) st = CL_INVALID_DEVICE;
  if (st == CL_SUCCESS) {
    struct msg req = {0};
    uint64_t token;
    msg_u32(&req, n);
    for (cl_uint i = 0; i < n; i++) msg_u64(&req, devs[i]->token);
    st = call_token(OP_CREATE_CONTEXT, &req, &token);
    if (st == CL_SUCCESS) {
      c = new_object(sizeof *c, token, MAGIC_CONTEXT);
      if (c && (c->devs = malloc(n * sizeof *devs))) {
        memcpy(c->devs, devs, n * sizeof *devs);
        c->ndev = n;
      } else {
        free(c), c = NULL, st = CL_OUT_OF_HOST_MEMORY;
        release_remote(token);
      }
    }
  }
  if (err) *err = st;
  return c;
}

cl_context oriel_clCreateContextFromType(const cl_context_properties *props, cl_device_type type,
                                         void (*notify)(const char *, const void *, size_t, void *), void *user,
                                         cl_int *err) {
  cl_device_id devs[MAX_DEVICES];
  cl_uint n = 0;
  cl_int st = properties_ok(props) ? oriel_clGetDeviceIDs(&platform, type, MAX_DEVICES, devs, &n)
                                   : CL_INVALID_PROPERTY;
  if (st != CL_SUCCESS) {
    if (err) *err = st;
    return NULL;
  }
  return oriel_clCreateContext(props, n < MAX_DEVICES ? n : MAX_DEVICES, devs, notify, user, err);
}

cl_int oriel_clRetainContext(cl_context c) {
  if (!VALID(c, MAGIC_CONTEXT)) return CL_INVALID_CONTEXT;
  cl_int st = retain_remote(c->token);
  if (st == CL_SUCCESS) __atomic_add_fetch(&c->refs, 1, __ATOMIC_SEQ_CST);
  return st;
}

cl_int oriel_clReleaseContext(cl_context c) {
  if (!VALID(c, MAGIC_CONTEXT)) return CL_INVALID_CONTEXT;
  cl_int st = release_remote(c->token);
  if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_SEQ_CST) == 0) {
    c->magic = 0;
    free(c->devs);
    free(c);
  }
  return st;
}

cl_int oriel_clGetContextInfo(cl_context c, cl_context_info param, size_t size, void *out, size_t *size_ret) {
  if (!VALID(c, MAGIC_CONTEXT)) return CL_INVALID_CONTEXT;
  switch (param) {
  case CL_CONTEXT_DEVICES: return oriel_info(c->devs, c->ndev * sizeof *c->devs, size, out, size_ret);
  case CL_CONTEXT_NUM_DEVICES: return oriel_info(&c->ndev, sizeof c->ndev, size, out, size_ret);
  case CL_CONTEXT_REFERENCE_COUNT: return oriel_info(&c->refs, sizeof c->refs, size, out, size_ret);
  case CL_CONTEXT_PROPERTIES: return oriel_info(NULL, 0, size, out, size_ret);
  default: return CL_INVALID_VALUE;
  }
}

/* ---- the rest: queues, buffers, programs, kernels, events (icd-objects.c) ---- */

void oriel_track_mem(cl_mem m, int add) {
  pthread_mutex_lock(&objects_lock);
  if (add) {
    if (nmems == capmems) {
      size_t cap = capmems ? capmems * 2 : 64;
      cl_mem *n = realloc(mems, cap * sizeof *n);
      if (n) mems = n, capmems = cap;
    }
    if (nmems < capmems) mems[nmems++] = m;
  } else {
    for (size_t i = 0; i < nmems; i++) if (mems[i] == m) { mems[i] = mems[--nmems]; break; }
  }
  pthread_mutex_unlock(&objects_lock);
}

int oriel_is_mem(const void *p) {
  pthread_mutex_lock(&objects_lock);
  int found = 0;
  for (size_t i = 0; i < nmems && !found; i++) found = mems[i] == p;
  pthread_mutex_unlock(&objects_lock);
  return found;
}

void *oriel_new_object(size_t size, uint64_t token, uint32_t magic) { return new_object(size, token, magic); }
cl_int oriel_call0(uint16_t op, struct msg *req) { return call0(op, req); }
cl_int oriel_call_token(uint16_t op, struct msg *req, uint64_t *t) { return call_token(op, req, t); }
cl_int oriel_call_info(uint16_t op, struct msg *req, size_t size, void *out, size_t *size_ret) {
  return call_info(op, req, size, out, size_ret);
}
cl_int oriel_retain_remote(uint64_t t) { return retain_remote(t); }
cl_int oriel_release_remote(uint64_t t) { return release_remote(t); }

/* ---- extension functions: only the ICD loader's ---- */

EXPORT void *clGetExtensionFunctionAddress(const char *name) {
  if (name && strcmp(name, "clIcdGetPlatformIDsKHR") == 0) return (void *)clIcdGetPlatformIDsKHR;
  if (name && strcmp(name, "clGetPlatformInfo") == 0) return (void *)clGetPlatformInfo;
  return NULL;
}

void *oriel_clGetExtensionFunctionAddress(const char *name) { return clGetExtensionFunctionAddress(name); }

void *oriel_clGetExtensionFunctionAddressForPlatform(cl_platform_id p, const char *name) {
  return p == &platform ? clGetExtensionFunctionAddress(name) : NULL;
}

cl_int oriel_clUnloadCompiler(void) { return CL_SUCCESS; }
cl_int oriel_clUnloadPlatformCompiler(cl_platform_id p) { return p == &platform ? CL_SUCCESS : CL_INVALID_PLATFORM; }
