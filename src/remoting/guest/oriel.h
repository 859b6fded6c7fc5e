/* The Oriel OpenCL ICD (guest side of API remoting): shared declarations. The protocol's numbers mirror
 * src/remoting/protocol.ts. */
#pragma once
#define CL_TARGET_OPENCL_VERSION 300
#define CL_USE_DEPRECATED_OPENCL_1_0_APIS
#define CL_USE_DEPRECATED_OPENCL_1_1_APIS
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#define CL_USE_DEPRECATED_OPENCL_2_0_APIS
#define CL_USE_DEPRECATED_OPENCL_2_1_APIS
#define CL_USE_DEPRECATED_OPENCL_2_2_APIS
#include <CL/cl_icd.h>
#include <stddef.h>
#include <stdint.h>

#define ORIEL_PORT_NAME "org.oriel.opencl.0"
#define ORIEL_MAX_FRAME (64u * 1024 * 1024)

enum oriel_op {
  OP_PLATFORM_INFO = 1, OP_DEVICE_IDS, OP_DEVICE_INFO, OP_CREATE_CONTEXT, OP_RELEASE, OP_RETAIN, OP_CREATE_QUEUE,
  OP_CREATE_BUFFER, OP_WRITE_BUFFER, OP_READ_BUFFER, OP_CREATE_PROGRAM, OP_BUILD_PROGRAM, OP_PROGRAM_BUILD_INFO,
  OP_CREATE_KERNEL, OP_SET_KERNEL_ARG, OP_ENQUEUE_KERNEL, OP_FINISH, OP_KERNEL_WORK_GROUP_INFO, OP_PROGRAM_INFO,
  OP_KERNEL_INFO, OP_MEM_INFO, OP_CONTEXT_INFO, OP_WINDOW, OP_CREATE_BUFFER_WINDOW, OP_MAP_BUFFER, OP_UNMAP, OP_HELLO,
  OP_EVENT_PROFILING,
};
/* The id of the helper's notices (protocol.ts): no request has it. */
#define ORIEL_NOTICE_ID 0u
enum oriel_arg_kind { ARG_VALUE = 0, ARG_MEM = 1, ARG_LOCAL = 2 };

/* A request being built, then the response being read (one buffer each, grown as needed). */
struct msg {
  uint8_t *data;
  size_t len, cap, pos;
  int failed; /* out of memory or read past the end */
};
void msg_u32(struct msg *m, uint32_t v);
void msg_u64(struct msg *m, uint64_t v);
void msg_bytes(struct msg *m, const void *p, size_t n);
uint32_t msg_get_u32(struct msg *m);
uint64_t msg_get_u64(struct msg *m);
/* A bytes result: its length and where it is inside the response (valid until the next call). */
const uint8_t *msg_get_bytes(struct msg *m, size_t *n);
void msg_free(struct msg *m);

/* Sends a request built in `req` (args only) and waits for its response in `resp`; the status it returns is the
 * host's, or CL_OUT_OF_HOST_MEMORY, or CL_DEVICE_NOT_AVAILABLE when the port fails or the helper that had the request
 * is gone (a restore from a checkpoint taken mid-call: the answer is not coming). Frees `req`. */
cl_int oriel_call(uint16_t op, struct msg *req, struct msg *resp);

/* Copies an info value the OpenCL way (size query, too small a buffer = CL_INVALID_VALUE). */
cl_int oriel_info(const void *value, size_t n, size_t size, void *out, size_t *size_ret);

/* Every object starts with the dispatch table pointer, as the ICD loader requires. */
#define ORIEL_OBJECT                   \
  struct _cl_icd_dispatch *dispatch;   \
  uint64_t token;                      \
  cl_uint refs;                        \
  uint32_t magic

struct _cl_platform_id { struct _cl_icd_dispatch *dispatch; };
struct _cl_device_id { ORIEL_OBJECT; };
struct _cl_context { ORIEL_OBJECT; cl_uint ndev; cl_device_id *devs; };
struct _cl_command_queue { ORIEL_OBJECT; cl_context ctx; cl_device_id dev; cl_command_queue_properties props; };
/* A buffer in the zero-copy window (in_window) has its bytes at window + woff; `shadow`: the caller's USE_HOST_PTR
 * memory outside the window, synced at map and unmap. `maps`: live mappings (icd-map.c). */
struct oriel_map;
struct _cl_mem {
  ORIEL_OBJECT;
  cl_context ctx;
  cl_mem_flags flags;
  size_t size;
  void *host_ptr;
  int in_window, owns_range;
  size_t woff;
  void *shadow;
  struct oriel_map *maps;
};
struct _cl_program { ORIEL_OBJECT; cl_context ctx; };
struct _cl_kernel { ORIEL_OBJECT; cl_context ctx; cl_program prog; };
struct _cl_event { ORIEL_OBJECT; cl_context ctx; cl_command_queue queue; cl_command_type type; };

enum { MAGIC_DEVICE = 0x0d1ce, MAGIC_CONTEXT, MAGIC_QUEUE, MAGIC_MEM, MAGIC_PROGRAM, MAGIC_KERNEL, MAGIC_EVENT };
#define VALID(o, m) ((o) && (o)->magic == (m))
#define MAX_DEVICES 64

/* icd.c's helpers for icd-objects.c. */
void *oriel_new_object(size_t size, uint64_t token, uint32_t magic);
cl_int oriel_call0(uint16_t op, struct msg *req);
cl_int oriel_call_token(uint16_t op, struct msg *req, uint64_t *token);
cl_int oriel_call_info(uint16_t op, struct msg *req, size_t size, void *out, size_t *size_ret);
cl_int oriel_retain_remote(uint64_t token);
cl_int oriel_release_remote(uint64_t token);
void oriel_track_mem(cl_mem m, int add);
int oriel_is_mem(const void *p);

/* window.c: the zero-copy window (NULL/0 when the VM has none). */
int oriel_window(uint8_t **base, size_t *size);
int oriel_window_holds(const void *p, size_t len, size_t *off);
int oriel_window_alloc(size_t len, size_t *off);
void oriel_window_free(size_t off);
cl_int oriel_window_size_remote(uint64_t *size);
/* icd-map.c: buffers in the window, maps and unmaps. */
cl_mem oriel_window_buffer(cl_context c, cl_mem_flags flags, size_t size, void *host_ptr, cl_int *err);
cl_int oriel_window_copy(cl_command_queue q, cl_mem m, int write, size_t offset, size_t size, void *ptr);
void oriel_mem_gone(cl_mem m);
/* icd-objects.c: an event wait list honoured (other queues finished), a local event made. */
cl_int oriel_wait_list(cl_command_queue q, cl_uint n, const cl_event *list);
cl_int oriel_make_event(cl_command_queue q, cl_command_type type, cl_event *out);
/* The same for an event the host made (its token): profiling times come from the host's event. */
cl_int oriel_make_remote_event(cl_command_queue q, cl_command_type type, uint64_t token, cl_event *out);
