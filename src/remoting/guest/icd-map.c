/* The Oriel OpenCL ICD: buffers in the zero-copy window (window.c), and clEnqueueMapBuffer / Unmap for every buffer.
 * A window buffer's bytes are the host buffer's own (the helper made it CL_MEM_USE_HOST_PTR at the same offset of the
 * same file): a map asks the host to map it in place (so an OpenCL that keeps a device copy syncs it) and returns a
 * pointer into the window; reads and writes are a map, a memcpy and an unmap, no data on the port. Other buffers map
 * through a copy: read at map, written back at unmap. */
#include "dispatch.gen.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct oriel_map {
  struct oriel_map *next;
  void *ptr, *staging;
  size_t offset, size;
  cl_map_flags flags;
};

static pthread_mutex_t maps_lock = PTHREAD_MUTEX_INITIALIZER;
#define WRITES(f) ((f) & (CL_MAP_WRITE | CL_MAP_WRITE_INVALIDATE_REGION))

cl_int oriel_window_size_remote(uint64_t *size) {
  struct msg req = {0};
  return oriel_call_token(OP_WINDOW, &req, size);
}

static cl_int remote_map(cl_command_queue q, cl_mem m, cl_map_flags flags, size_t offset, size_t size) {
  struct msg req = {0};
  msg_u64(&req, q->token);
  msg_u64(&req, m->token);
  msg_u64(&req, flags);
  msg_u64(&req, offset);
  msg_u64(&req, size);
  return oriel_call0(OP_MAP_BUFFER, &req);
}

static cl_int remote_unmap(cl_command_queue q, cl_mem m, size_t offset) {
  struct msg req = {0};
  msg_u64(&req, q->token);
  msg_u64(&req, m->token);
  msg_u64(&req, offset);
  return oriel_call0(OP_UNMAP, &req);
}

static uint8_t *window_at(cl_mem m, size_t offset) {
  uint8_t *base;
  oriel_window(&base, NULL);
  return base + m->woff + offset;
}

/* A buffer placed in the window, or NULL with *err CL_SUCCESS when it does not go there (an ordinary buffer, no
 * window, or the window is full: the copy path takes it). */
cl_mem oriel_window_buffer(cl_context c, cl_mem_flags flags, size_t size, void *host_ptr, cl_int *err) {
  size_t off;
  int owns = 0;
  *err = CL_SUCCESS;
  if (!(flags & (CL_MEM_ALLOC_HOST_PTR | CL_MEM_USE_HOST_PTR)) || !oriel_window(NULL, NULL)) return NULL;
  if (!((flags & CL_MEM_USE_HOST_PTR) && oriel_window_holds(host_ptr, size, &off))) {
    if (!oriel_window_alloc(size, &off)) return NULL;
    owns = 1;
    uint8_t *base;
    oriel_window(&base, NULL);
    if (host_ptr) memcpy(base + off, host_ptr, size); /* COPY_HOST_PTR, or USE_HOST_PTR's shadow */
  }
  const cl_mem_flags passed = CL_MEM_READ_WRITE | CL_MEM_WRITE_ONLY | CL_MEM_READ_ONLY | CL_MEM_HOST_WRITE_ONLY |
                              CL_MEM_HOST_READ_ONLY | CL_MEM_HOST_NO_ACCESS;
  struct msg req = {0};
  uint64_t token;
  msg_u64(&req, c->token);
  msg_u64(&req, flags & passed);
  msg_u64(&req, off);
  msg_u64(&req, size);
  cl_int st = oriel_call_token(OP_CREATE_BUFFER_WINDOW, &req, &token);
  cl_mem m = NULL;
  if (st == CL_SUCCESS && !(m = oriel_new_object(sizeof *m, token, MAGIC_MEM))) {
    st = CL_OUT_OF_HOST_MEMORY;
    oriel_release_remote(token);
  }
  if (st != CL_SUCCESS) {
    if (owns) oriel_window_free(off);
    *err = st;
    return NULL;
  }
  m->ctx = c, m->flags = flags, m->size = size, m->in_window = 1, m->owns_range = owns, m->woff = off;
  m->host_ptr = (flags & CL_MEM_USE_HOST_PTR) ? host_ptr : NULL;
  m->shadow = (flags & CL_MEM_USE_HOST_PTR) && owns ? host_ptr : NULL;
  oriel_track_mem(m, 1);
  return m;
}

/* clEnqueueRead/WriteBuffer on a window buffer: mapped in place on the host, copied here. */
cl_int oriel_window_copy(cl_command_queue q, cl_mem m, int write, size_t offset, size_t size, void *ptr) {
  cl_int st = remote_map(q, m, write ? CL_MAP_WRITE_INVALIDATE_REGION : CL_MAP_READ, offset, size);
  if (st != CL_SUCCESS) return st;
  if (write) memcpy(window_at(m, offset), ptr, size);
  else memcpy(ptr, window_at(m, offset), size);
  return remote_unmap(q, m, offset);
}

void *oriel_clEnqueueMapBuffer(cl_command_queue q, cl_mem m, cl_bool blocking, cl_map_flags flags, size_t offset,
                               size_t size, cl_uint n, const cl_event *list, cl_event *ev, cl_int *err) {
  (void)blocking; /* maps complete before this returns */
  cl_int st = CL_SUCCESS;
  struct oriel_map *map = NULL;
  if (!VALID(q, MAGIC_QUEUE)) st = CL_INVALID_COMMAND_QUEUE;
  else if (!VALID(m, MAGIC_MEM)) st = CL_INVALID_MEM_OBJECT;
  else if (!size || offset > m->size || size > m->size - offset) st = CL_INVALID_VALUE;
  else if (flags & ~(cl_map_flags)(CL_MAP_READ | CL_MAP_WRITE | CL_MAP_WRITE_INVALIDATE_REGION)) st = CL_INVALID_VALUE;
  else if (!(map = calloc(1, sizeof *map))) st = CL_OUT_OF_HOST_MEMORY;
  if (st == CL_SUCCESS) st = oriel_wait_list(q, n, list);
  if (st == CL_SUCCESS && m->in_window) {
    st = remote_map(q, m, flags, offset, size);
    if (st == CL_SUCCESS && m->shadow) {
      map->ptr = (uint8_t *)m->shadow + offset;
      if (!(flags & CL_MAP_WRITE_INVALIDATE_REGION)) memcpy(map->ptr, window_at(m, offset), size);
    } else if (st == CL_SUCCESS) {
      map->ptr = window_at(m, offset);
    }
  } else if (st == CL_SUCCESS) {
    /* The copy path: USE_HOST_PTR maps into the caller's memory, others into a staging copy. */
    map->ptr = m->host_ptr ? (uint8_t *)m->host_ptr + offset : (map->staging = malloc(size));
    if (!map->ptr) st = CL_OUT_OF_HOST_MEMORY;
    else if (!(flags & CL_MAP_WRITE_INVALIDATE_REGION))
      st = oriel_clEnqueueReadBuffer(q, m, CL_TRUE, offset, size, map->ptr, 0, NULL, NULL);
  }
  if (st == CL_SUCCESS) st = oriel_make_event(q, CL_COMMAND_MAP_BUFFER, ev);
  if (st == CL_SUCCESS) {
    map->offset = offset, map->size = size, map->flags = flags;
    pthread_mutex_lock(&maps_lock);
    map->next = m->maps, m->maps = map;
    pthread_mutex_unlock(&maps_lock);
  } else if (map) {
    if (m->in_window && map->ptr) remote_unmap(q, m, offset);
    free(map->staging), free(map), map = NULL;
  }
  if (err) *err = st;
  return map ? map->ptr : NULL;
}

cl_int oriel_clEnqueueUnmapMemObject(cl_command_queue q, cl_mem m, void *ptr, cl_uint n, const cl_event *list,
                                     cl_event *ev) {
  if (!VALID(q, MAGIC_QUEUE)) return CL_INVALID_COMMAND_QUEUE;
  if (!VALID(m, MAGIC_MEM)) return CL_INVALID_MEM_OBJECT;
  struct oriel_map *map = NULL, **at;
  pthread_mutex_lock(&maps_lock);
  for (at = &m->maps; *at; at = &(*at)->next) {
    if ((*at)->ptr == ptr) {
      map = *at, *at = map->next;
      break;
    }
  }
  pthread_mutex_unlock(&maps_lock);
  if (!map) return CL_INVALID_VALUE;
  cl_int st = oriel_wait_list(q, n, list);
  if (st == CL_SUCCESS && m->in_window) {
    if (m->shadow && WRITES(map->flags)) memcpy(window_at(m, map->offset), ptr, map->size);
    st = remote_unmap(q, m, map->offset);
  } else if (st == CL_SUCCESS && WRITES(map->flags)) {
    st = oriel_clEnqueueWriteBuffer(q, m, CL_TRUE, map->offset, map->size, ptr, 0, NULL, NULL);
  }
  free(map->staging);
  free(map);
  return st == CL_SUCCESS ? oriel_make_event(q, CL_COMMAND_UNMAP_MEM_OBJECT, ev) : st;
}

/* The buffer's last reference is gone (the host has released it and finished its queues): its maps and its range. */
void oriel_mem_gone(cl_mem m) {
  pthread_mutex_lock(&maps_lock);
  struct oriel_map *map = m->maps;
  m->maps = NULL;
  pthread_mutex_unlock(&maps_lock);
  while (map) {
    struct oriel_map *next = map->next;
    free(map->staging), free(map);
    map = next;
  }
  if (m->in_window && m->owns_range) oriel_window_free(m->woff);
}
