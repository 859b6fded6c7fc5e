/* The Oriel OpenCL ICD: command queues, buffers, programs, kernels and events (icd.c has the platform, devices and
 * contexts). Buffers move through the port (the copy path): reads and writes go in chunks of CHUNK bytes. */
#include "dispatch.gen.h"
#include <stdlib.h>
#include <string.h>

#define CHUNK (16u * 1024 * 1024)

/* Reference counting shared by every object kind: the host's count moves with the guest's. */
#define REFCOUNT(Name, type, kind, code, cleanup)                                   \
  cl_int oriel_clRetain##Name(type o) {                                              \
    if (!VALID(o, kind)) return code;                                                \
    cl_int st = o->token ? oriel_retain_remote(o->token) : CL_SUCCESS;               \
    if (st == CL_SUCCESS) __atomic_add_fetch(&o->refs, 1, __ATOMIC_SEQ_CST);         \
    return st;                                                                       \
  }                                                                                  \
  cl_int oriel_clRelease##Name(type o) {                                             \
    if (!VALID(o, kind)) return code;                                                \
    cl_int st = o->token ? oriel_release_remote(o->token) : CL_SUCCESS;              \
    if (__atomic_sub_fetch(&o->refs, 1, __ATOMIC_SEQ_CST) == 0) {                    \
      cleanup;                                                                       \
      o->magic = 0;                                                                  \
      free(o);                                                                       \
    }                                                                                \
    return st;                                                                       \
  }

REFCOUNT(CommandQueue, cl_command_queue, MAGIC_QUEUE, CL_INVALID_COMMAND_QUEUE, (void)0)
REFCOUNT(MemObject, cl_mem, MAGIC_MEM, CL_INVALID_MEM_OBJECT, (oriel_track_mem(o, 0), oriel_mem_gone(o)))
REFCOUNT(Program, cl_program, MAGIC_PROGRAM, CL_INVALID_PROGRAM, (void)0)
REFCOUNT(Kernel, cl_kernel, MAGIC_KERNEL, CL_INVALID_KERNEL, (void)0)
REFCOUNT(Event, cl_event, MAGIC_EVENT, CL_INVALID_EVENT, (void)0)

static cl_int finish(cl_command_queue q) {
  struct msg req = {0};
  msg_u64(&req, q->token);
  return oriel_call0(OP_FINISH, &req);
}

/* Commands before this one in other queues must be done first (ours run in order on the host). */
cl_int oriel_wait_list(cl_command_queue q, cl_uint n, const cl_event *list) {
  if ((n && !list) || (!n && list)) return CL_INVALID_EVENT_WAIT_LIST;
  for (cl_uint i = 0; i < n; i++) {
    if (!VALID(list[i], MAGIC_EVENT)) return CL_INVALID_EVENT_WAIT_LIST;
    if (list[i]->queue != q) {
      cl_int st = finish(list[i]->queue);
      if (st != CL_SUCCESS) return st;
    }
  }
  return CL_SUCCESS;
}

cl_int oriel_make_remote_event(cl_command_queue q, cl_command_type type, uint64_t token, cl_event *out) {
  if (!out) return token ? oriel_release_remote(token) : CL_SUCCESS;
  cl_event e = oriel_new_object(sizeof *e, token, MAGIC_EVENT);
  if (!e) {
    if (token) oriel_release_remote(token);
    return CL_OUT_OF_HOST_MEMORY;
  }
  e->queue = q, e->ctx = q->ctx, e->type = type;
  *out = e;
  return CL_SUCCESS;
}

cl_int oriel_make_event(cl_command_queue q, cl_command_type type, cl_event *out) {
  return oriel_make_remote_event(q, type, 0, out);
}

/* ---- command queues ---- */

cl_command_queue oriel_clCreateCommandQueue(cl_context c, cl_device_id d, cl_command_queue_properties props,
                                            cl_int *err) {
  cl_int st = CL_SUCCESS;
  cl_command_queue q = NULL;
  uint64_t token;
  if (!VALID(c, MAGIC_CONTEXT)) st = CL_INVALID_CONTEXT;
  else if (!VALID(d, MAGIC_DEVICE)) st = CL_INVALID_DEVICE;
  if (st == CL_SUCCESS) {
    struct msg req = {0};
    msg_u64(&req, c->token);
    msg_u64(&req, d->token);
    msg_u64(&req, props);
    st = oriel_call_token(OP_CREATE_QUEUE, &req, &token);
  }
  if (st == CL_SUCCESS) {
    if ((q = oriel_new_object(sizeof *q, token, MAGIC_QUEUE))) q->ctx = c, q->dev = d, q->props = props;
    else st = CL_OUT_OF_HOST_MEMORY, oriel_release_remote(token);
  }
  if (err) *err = st;
  return q;
}

cl_command_queue oriel_clCreateCommandQueueWithProperties(cl_context c, cl_device_id d,
                                                          const cl_queue_properties *props, cl_int *err) {
  cl_command_queue_properties p = 0;
  for (; props && props[0]; props += 2) {
    if (props[0] != CL_QUEUE_PROPERTIES) {
      if (err) *err = CL_INVALID_QUEUE_PROPERTIES;
      return NULL;
    }
    p = props[1];
  }
  return oriel_clCreateCommandQueue(c, d, p, err);
}

cl_int oriel_clGetCommandQueueInfo(cl_command_queue q, cl_command_queue_info param, size_t size, void *out,
                                   size_t *size_ret) {
  if (!VALID(q, MAGIC_QUEUE)) return CL_INVALID_COMMAND_QUEUE;
  switch (param) {
  case CL_QUEUE_CONTEXT: return oriel_info(&q->ctx, sizeof q->ctx, size, out, size_ret);
  case CL_QUEUE_DEVICE: return oriel_info(&q->dev, sizeof q->dev, size, out, size_ret);
  case CL_QUEUE_REFERENCE_COUNT: return oriel_info(&q->refs, sizeof q->refs, size, out, size_ret);
  case CL_QUEUE_PROPERTIES: return oriel_info(&q->props, sizeof q->props, size, out, size_ret);
  default: return CL_INVALID_VALUE;
  }
}

cl_int oriel_clFinish(cl_command_queue q) { return VALID(q, MAGIC_QUEUE) ? finish(q) : CL_INVALID_COMMAND_QUEUE; }
cl_int oriel_clFlush(cl_command_queue q) { return VALID(q, MAGIC_QUEUE) ? CL_SUCCESS : CL_INVALID_COMMAND_QUEUE; }

/* ---- buffers ---- */

cl_mem oriel_clCreateBuffer(cl_context c, cl_mem_flags flags, size_t size, void *host_ptr, cl_int *err) {
  cl_int st = CL_SUCCESS;
  cl_mem m = NULL;
  uint64_t token;
  int with_data = (flags & (CL_MEM_USE_HOST_PTR | CL_MEM_COPY_HOST_PTR)) != 0;
  if (!VALID(c, MAGIC_CONTEXT)) st = CL_INVALID_CONTEXT;
  else if (with_data != (host_ptr != NULL)) st = CL_INVALID_HOST_PTR;
  else if (!size) st = CL_INVALID_BUFFER_SIZE;
  else if ((flags & CL_MEM_USE_HOST_PTR) && (flags & (CL_MEM_ALLOC_HOST_PTR | CL_MEM_COPY_HOST_PTR)))
    st = CL_INVALID_VALUE;
  else if ((m = oriel_window_buffer(c, flags, size, host_ptr, &st)) || st != CL_SUCCESS) {
    if (err) *err = st;
    return m; /* in the zero-copy window (icd-map.c) */
  }
  else if (with_data && size > ORIEL_MAX_FRAME - 4096) st = CL_INVALID_BUFFER_SIZE;
  if (st == CL_SUCCESS) {
    struct msg req = {0};
    msg_u64(&req, c->token);
    msg_u64(&req, flags & ~(cl_mem_flags)(CL_MEM_USE_HOST_PTR | CL_MEM_COPY_HOST_PTR));
    msg_u64(&req, size);
    msg_bytes(&req, host_ptr, with_data ? size : 0);
    st = oriel_call_token(OP_CREATE_BUFFER, &req, &token);
  }
  if (st == CL_SUCCESS) {
    if ((m = oriel_new_object(sizeof *m, token, MAGIC_MEM))) {
      m->ctx = c, m->flags = flags, m->size = size;
      m->host_ptr = (flags & CL_MEM_USE_HOST_PTR) ? host_ptr : NULL;
      oriel_track_mem(m, 1);
    } else {
      st = CL_OUT_OF_HOST_MEMORY, oriel_release_remote(token);
    }
  }
  if (err) *err = st;
  return m;
}

cl_int oriel_clEnqueueWriteBuffer(cl_command_queue q, cl_mem m, cl_bool blocking, size_t offset, size_t size,
                                  const void *ptr, cl_uint n, const cl_event *list, cl_event *ev) {
  (void)blocking; /* the data is sent before this returns: the caller may reuse ptr at once either way */
  if (!VALID(q, MAGIC_QUEUE)) return CL_INVALID_COMMAND_QUEUE;
  if (!VALID(m, MAGIC_MEM)) return CL_INVALID_MEM_OBJECT;
  if (!ptr || !size || offset > m->size || size > m->size - offset) return CL_INVALID_VALUE;
  cl_int st = oriel_wait_list(q, n, list);
  if (st == CL_SUCCESS && m->in_window) st = oriel_window_copy(q, m, 1, offset, size, (void *)ptr);
  else for (size_t done = 0; st == CL_SUCCESS && done < size; done += CHUNK) {
    size_t len = size - done < CHUNK ? size - done : CHUNK;
    struct msg req = {0};
    msg_u64(&req, q->token);
    msg_u64(&req, m->token);
    msg_u64(&req, offset + done);
    msg_bytes(&req, (const uint8_t *)ptr + done, len);
    st = oriel_call0(OP_WRITE_BUFFER, &req);
  }
  return st == CL_SUCCESS ? oriel_make_event(q, CL_COMMAND_WRITE_BUFFER, ev) : st;
}

cl_int oriel_clEnqueueReadBuffer(cl_command_queue q, cl_mem m, cl_bool blocking, size_t offset, size_t size,
                                 void *ptr, cl_uint n, const cl_event *list, cl_event *ev) {
  (void)blocking; /* the host reads synchronously: the data is in ptr when this returns */
  if (!VALID(q, MAGIC_QUEUE)) return CL_INVALID_COMMAND_QUEUE;
  if (!VALID(m, MAGIC_MEM)) return CL_INVALID_MEM_OBJECT;
  if (!ptr || !size || offset > m->size || size > m->size - offset) return CL_INVALID_VALUE;
  cl_int st = oriel_wait_list(q, n, list);
  if (st == CL_SUCCESS && m->in_window) st = oriel_window_copy(q, m, 0, offset, size, ptr);
  else for (size_t done = 0; st == CL_SUCCESS && done < size; done += CHUNK) {
    size_t len = size - done < CHUNK ? size - done : CHUNK, got;
    struct msg req = {0}, resp;
    msg_u64(&req, q->token);
    msg_u64(&req, m->token);
    msg_u64(&req, offset + done);
    msg_u64(&req, len);
    st = oriel_call(OP_READ_BUFFER, &req, &resp);
    if (st == CL_SUCCESS) {
      const uint8_t *data = msg_get_bytes(&resp, &got);
      if (resp.failed || got != len) st = CL_OUT_OF_RESOURCES;
      else memcpy((uint8_t *)ptr + done, data, len);
    }
    msg_free(&resp);
  }
  return st == CL_SUCCESS ? oriel_make_event(q, CL_COMMAND_READ_BUFFER, ev) : st;
}

cl_int oriel_clGetMemObjectInfo(cl_mem m, cl_mem_info param, size_t size, void *out, size_t *size_ret) {
  if (!VALID(m, MAGIC_MEM)) return CL_INVALID_MEM_OBJECT;
  switch (param) {
  case CL_MEM_CONTEXT: return oriel_info(&m->ctx, sizeof m->ctx, size, out, size_ret);
  case CL_MEM_HOST_PTR: return oriel_info(&m->host_ptr, sizeof m->host_ptr, size, out, size_ret);
  case CL_MEM_FLAGS: return oriel_info(&m->flags, sizeof m->flags, size, out, size_ret);
  case CL_MEM_SIZE: return oriel_info(&m->size, sizeof m->size, size, out, size_ret);
  case CL_MEM_REFERENCE_COUNT: return oriel_info(&m->refs, sizeof m->refs, size, out, size_ret);
  default: {
    struct msg req = {0};
    msg_u64(&req, m->token);
    msg_u32(&req, param);
    return oriel_call_info(OP_MEM_INFO, &req, size, out, size_ret);
  }
  }
}

/* ---- programs and kernels ---- */

cl_program oriel_clCreateProgramWithSource(cl_context c, cl_uint count, const char **strings, const size_t *lengths,
                                           cl_int *err) {
  cl_int st = CL_SUCCESS;
  cl_program p = NULL;
  uint64_t token;
  if (!VALID(c, MAGIC_CONTEXT)) st = CL_INVALID_CONTEXT;
  else if (!count || !strings) st = CL_INVALID_VALUE;
  size_t total = 0;
  for (cl_uint i = 0; st == CL_SUCCESS && i < count; i++) {
    if (!strings[i]) st = CL_INVALID_VALUE;
    else total += lengths && lengths[i] ? lengths[i] : strlen(strings[i]);
  }
  char *src = st == CL_SUCCESS ? malloc(total + 1) : NULL;
  if (st == CL_SUCCESS && !src) st = CL_OUT_OF_HOST_MEMORY;
  if (st == CL_SUCCESS) {
    size_t at = 0;
    for (cl_uint i = 0; i < count; i++) {
      size_t n = lengths && lengths[i] ? lengths[i] : strlen(strings[i]);
      memcpy(src + at, strings[i], n);
      at += n;
    }
    struct msg req = {0};
    msg_u64(&req, c->token);
    msg_bytes(&req, src, total);
    st = oriel_call_token(OP_CREATE_PROGRAM, &req, &token);
  }
  free(src);
  if (st == CL_SUCCESS) {
    if ((p = oriel_new_object(sizeof *p, token, MAGIC_PROGRAM))) p->ctx = c;
    else st = CL_OUT_OF_HOST_MEMORY, oriel_release_remote(token);
  }
  if (err) *err = st;
  return p;
}

cl_int oriel_clBuildProgram(cl_program p, cl_uint n, const cl_device_id *devs, const char *options,
                            void (*notify)(cl_program, void *), void *user) {
  if (!VALID(p, MAGIC_PROGRAM)) return CL_INVALID_PROGRAM;
  if ((n && !devs) || (!n && devs)) return CL_INVALID_VALUE;
  for (cl_uint i = 0; i < n; i++) if (!VALID(devs[i], MAGIC_DEVICE)) return CL_INVALID_DEVICE;
  struct msg req = {0};
  msg_u64(&req, p->token);
  msg_bytes(&req, options ? options : "", options ? strlen(options) : 0);
  cl_int st = oriel_call0(OP_BUILD_PROGRAM, &req);
  if (notify) notify(p, user); /* the build is over either way */
  return st;
}

cl_int oriel_clGetProgramBuildInfo(cl_program p, cl_device_id d, cl_program_build_info param, size_t size,
                                   void *out, size_t *size_ret) {
  if (!VALID(p, MAGIC_PROGRAM)) return CL_INVALID_PROGRAM;
  if (!VALID(d, MAGIC_DEVICE)) return CL_INVALID_DEVICE;
  struct msg req = {0};
  msg_u64(&req, p->token);
  msg_u64(&req, d->token);
  msg_u32(&req, param);
  return oriel_call_info(OP_PROGRAM_BUILD_INFO, &req, size, out, size_ret);
}

cl_int oriel_clGetProgramInfo(cl_program p, cl_program_info param, size_t size, void *out, size_t *size_ret) {
  if (!VALID(p, MAGIC_PROGRAM)) return CL_INVALID_PROGRAM;
  switch (param) {
  case CL_PROGRAM_CONTEXT: return oriel_info(&p->ctx, sizeof p->ctx, size, out, size_ret);
  case CL_PROGRAM_NUM_DEVICES: return oriel_info(&p->ctx->ndev, sizeof(cl_uint), size, out, size_ret);
  case CL_PROGRAM_DEVICES:
    return oriel_info(p->ctx->devs, p->ctx->ndev * sizeof(cl_device_id), size, out, size_ret);
  case CL_PROGRAM_BINARIES: return CL_INVALID_VALUE; /* program binaries are not remoted */
  default: {
    struct msg req = {0};
    msg_u64(&req, p->token);
    msg_u32(&req, param);
    return oriel_call_info(OP_PROGRAM_INFO, &req, size, out, size_ret);
  }
  }
}

cl_kernel oriel_clCreateKernel(cl_program p, const char *name, cl_int *err) {
  cl_int st = CL_SUCCESS;
  cl_kernel k = NULL;
  uint64_t token;
  if (!VALID(p, MAGIC_PROGRAM)) st = CL_INVALID_PROGRAM;
  else if (!name) st = CL_INVALID_VALUE;
  if (st == CL_SUCCESS) {
    struct msg req = {0};
    msg_u64(&req, p->token);
    msg_bytes(&req, name, strlen(name));
    st = oriel_call_token(OP_CREATE_KERNEL, &req, &token);
  }
  if (st == CL_SUCCESS) {
    if ((k = oriel_new_object(sizeof *k, token, MAGIC_KERNEL))) k->prog = p, k->ctx = p->ctx;
    else st = CL_OUT_OF_HOST_MEMORY, oriel_release_remote(token);
  }
  if (err) *err = st;
  return k;
}

cl_int oriel_clSetKernelArg(cl_kernel k, cl_uint index, size_t size, const void *value) {
  if (!VALID(k, MAGIC_KERNEL)) return CL_INVALID_KERNEL;
  struct msg req = {0};
  msg_u64(&req, k->token);
  msg_u32(&req, index);
  if (!value) {
    msg_u32(&req, ARG_LOCAL);
    msg_u64(&req, size);
    msg_bytes(&req, "", 0);
  } else if (size == sizeof(cl_mem) && oriel_is_mem(*(void *const *)value)) {
    msg_u32(&req, ARG_MEM);
    msg_u64(&req, 8);
    uint64_t t = (*(cl_mem const *)value)->token;
    msg_bytes(&req, &t, 8);
  } else {
    msg_u32(&req, ARG_VALUE);
    msg_u64(&req, size);
    msg_bytes(&req, value, size);
  }
  return oriel_call0(OP_SET_KERNEL_ARG, &req);
}

cl_int oriel_clGetKernelInfo(cl_kernel k, cl_kernel_info param, size_t size, void *out, size_t *size_ret) {
  if (!VALID(k, MAGIC_KERNEL)) return CL_INVALID_KERNEL;
  if (param == CL_KERNEL_CONTEXT) return oriel_info(&k->ctx, sizeof k->ctx, size, out, size_ret);
  if (param == CL_KERNEL_PROGRAM) return oriel_info(&k->prog, sizeof k->prog, size, out, size_ret);
  struct msg req = {0};
  msg_u64(&req, k->token);
  msg_u32(&req, param);
  return oriel_call_info(OP_KERNEL_INFO, &req, size, out, size_ret);
}

cl_int oriel_clGetKernelWorkGroupInfo(cl_kernel k, cl_device_id d, cl_kernel_work_group_info param, size_t size,
                                      void *out, size_t *size_ret) {
  if (!VALID(k, MAGIC_KERNEL)) return CL_INVALID_KERNEL;
  if (!d && k->ctx->ndev == 1) d = k->ctx->devs[0];
  if (!VALID(d, MAGIC_DEVICE)) return CL_INVALID_DEVICE;
  struct msg req = {0};
  msg_u64(&req, k->token);
  msg_u64(&req, d->token);
  msg_u32(&req, param);
  return oriel_call_info(OP_KERNEL_WORK_GROUP_INFO, &req, size, out, size_ret);
}

cl_int oriel_clEnqueueNDRangeKernel(cl_command_queue q, cl_kernel k, cl_uint dims, const size_t *offset,
                                    const size_t *global, const size_t *local, cl_uint n, const cl_event *list,
                                    cl_event *ev) {
  if (!VALID(q, MAGIC_QUEUE)) return CL_INVALID_COMMAND_QUEUE;
  if (!VALID(k, MAGIC_KERNEL)) return CL_INVALID_KERNEL;
  if (dims < 1 || dims > 3) return CL_INVALID_WORK_DIMENSION;
  if (!global) return CL_INVALID_GLOBAL_WORK_SIZE;
  cl_int st = oriel_wait_list(q, n, list);
  if (st != CL_SUCCESS) return st;
  struct msg req = {0};
  msg_u64(&req, q->token);
  msg_u64(&req, k->token);
  msg_u32(&req, dims);
  for (cl_uint i = 0; i < 3; i++) msg_u64(&req, offset && i < dims ? offset[i] : 0);
  for (cl_uint i = 0; i < 3; i++) msg_u64(&req, i < dims ? global[i] : 0);
  for (cl_uint i = 0; i < 3; i++) msg_u64(&req, local && i < dims ? local[i] : 0);
  if (!ev) {
    st = oriel_call0(OP_ENQUEUE_KERNEL, &req);
    return st;
  }
  /* Asked for its event: the host's, so that its profiling times are the kernel's own. */
  uint64_t token = 0;
  msg_u32(&req, 1);
  st = oriel_call_token(OP_ENQUEUE_KERNEL, &req, &token);
  return st == CL_SUCCESS ? oriel_make_remote_event(q, CL_COMMAND_NDRANGE_KERNEL, token, ev) : st;
}

/* ---- events ---- */

cl_int oriel_clWaitForEvents(cl_uint n, const cl_event *list) {
  if (!n || !list) return CL_INVALID_VALUE;
  for (cl_uint i = 0; i < n; i++) {
    if (!VALID(list[i], MAGIC_EVENT)) return CL_INVALID_EVENT;
    cl_int st = finish(list[i]->queue);
    if (st != CL_SUCCESS) return CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST;
  }
  return CL_SUCCESS;
}

cl_int oriel_clGetEventInfo(cl_event e, cl_event_info param, size_t size, void *out, size_t *size_ret) {
  if (!VALID(e, MAGIC_EVENT)) return CL_INVALID_EVENT;
  switch (param) {
  case CL_EVENT_COMMAND_QUEUE: return oriel_info(&e->queue, sizeof e->queue, size, out, size_ret);
  case CL_EVENT_CONTEXT: return oriel_info(&e->ctx, sizeof e->ctx, size, out, size_ret);
  case CL_EVENT_COMMAND_TYPE: return oriel_info(&e->type, sizeof e->type, size, out, size_ret);
  case CL_EVENT_REFERENCE_COUNT: return oriel_info(&e->refs, sizeof e->refs, size, out, size_ret);
  case CL_EVENT_COMMAND_EXECUTION_STATUS: {
    cl_int st = finish(e->queue);
    cl_int status = st == CL_SUCCESS ? CL_COMPLETE : st;
    return oriel_info(&status, sizeof status, size, out, size_ret);
  }
  default: return CL_INVALID_VALUE;
  }
}

cl_int oriel_clGetEventProfilingInfo(cl_event e, cl_profiling_info param, size_t size, void *out, size_t *size_ret) {
  if (!VALID(e, MAGIC_EVENT)) return CL_INVALID_EVENT;
  if (!e->token) return CL_PROFILING_INFO_NOT_AVAILABLE; /* a command run in the guest's own terms (not a kernel) */
  struct msg req = {0}, resp;
  msg_u64(&req, e->token);
  msg_u32(&req, param);
  cl_int st = oriel_call(OP_EVENT_PROFILING, &req, &resp);
  cl_ulong v = st == CL_SUCCESS ? msg_get_u64(&resp) : 0;
  if (st == CL_SUCCESS && resp.failed) st = CL_OUT_OF_RESOURCES;
  msg_free(&resp);
  return st == CL_SUCCESS ? oriel_info(&v, sizeof v, size, out, size_ret) : st;
}

cl_int oriel_clEnqueueMarkerWithWaitList(cl_command_queue q, cl_uint n, const cl_event *list, cl_event *ev) {
  if (!VALID(q, MAGIC_QUEUE)) return CL_INVALID_COMMAND_QUEUE;
  cl_int st = oriel_wait_list(q, n, list);
  return st == CL_SUCCESS ? oriel_make_event(q, CL_COMMAND_MARKER, ev) : st;
}

cl_int oriel_clEnqueueBarrierWithWaitList(cl_command_queue q, cl_uint n, const cl_event *list, cl_event *ev) {
  if (!VALID(q, MAGIC_QUEUE)) return CL_INVALID_COMMAND_QUEUE;
  cl_int st = oriel_wait_list(q, n, list);
  return st == CL_SUCCESS ? oriel_make_event(q, CL_COMMAND_BARRIER, ev) : st;
}
