/* The ICD's link to the host: the virtio-serial port org.oriel.opencl.0, one request and its response at a time
 * (a mutex around each call: the port has one opener, this process). Frames: u32 length + body (protocol.ts).
 * A call never waits for an answer that cannot come: the helper's notice of a new helper (a restore from a checkpoint
 * taken mid-call) or of a new link fails it with CL_DEVICE_NOT_AVAILABLE, as does the port closing; the process can
 * then start over (clGetPlatformIDs ...) against the new helper. */
#include "oriel.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int port_fd = -1;
static uint32_t next_id = 1;

static void put_raw(struct msg *m, const void *p, size_t n) {
  if (m->failed || !n) return;
  if (m->len + n > m->cap) {
    size_t cap = (m->len + n) * 2 + 64;
    uint8_t *d = realloc(m->data, cap);
    if (!d) { m->failed = 1; return; }
    m->data = d, m->cap = cap;
  }
  memcpy(m->data + m->len, p, n);
  m->len += n;
}

void msg_u32(struct msg *m, uint32_t v) {
  uint8_t b[4] = {v, v >> 8, v >> 16, v >> 24};
  put_raw(m, b, 4);
}

void msg_u64(struct msg *m, uint64_t v) {
  msg_u32(m, (uint32_t)v);
  msg_u32(m, (uint32_t)(v >> 32));
}

void msg_bytes(struct msg *m, const void *p, size_t n) {
  if (n > ORIEL_MAX_FRAME) { m->failed = 1; return; }
  msg_u32(m, (uint32_t)n);
  put_raw(m, p, n);
}

uint32_t msg_get_u32(struct msg *m) {
  if (m->failed || m->pos + 4 > m->len) { m->failed = 1; return 0; }
  const uint8_t *b = m->data + m->pos;
  m->pos += 4;
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

uint64_t msg_get_u64(struct msg *m) {
  uint64_t lo = msg_get_u32(m);
  return lo | (uint64_t)msg_get_u32(m) << 32;
}

const uint8_t *msg_get_bytes(struct msg *m, size_t *n) {
  size_t len = msg_get_u32(m);
  if (m->failed || m->pos + len > m->len) { m->failed = 1; *n = 0; return NULL; }
  const uint8_t *p = m->data + m->pos;
  m->pos += len;
  *n = len;
  return p;
}

void msg_free(struct msg *m) {
  free(m->data);
  memset(m, 0, sizeof *m);
}

/* /dev/virtio-ports/<name> where udev makes it; else the vportNpM whose sysfs name matches (busybox guests). */
static int open_port(void) {
  const char *env = getenv("ORIEL_OPENCL_PORT");
  if (env && strncmp(env, "unix:", 5) == 0) { /* the helper's protocol on a unix socket: host-side tests */
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", env + 5);
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) return s;
    close(s);
    return -1;
  }
  if (env) return open(env, O_RDWR | O_CLOEXEC);
  int fd = open("/dev/virtio-ports/" ORIEL_PORT_NAME, O_RDWR | O_CLOEXEC);
  if (fd >= 0) return fd;
  DIR *d = opendir("/sys/class/virtio-ports");
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d))) {
    char path[512], name[128] = {0};
    snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
    FILE *f = fopen(path, "re");
    if (!f) continue;
    if (fgets(name, sizeof name, f)) name[strcspn(name, "\n")] = 0;
    fclose(f);
    if (strcmp(name, ORIEL_PORT_NAME) == 0) {
      snprintf(path, sizeof path, "/dev/%s", e->d_name);
      fd = open(path, O_RDWR | O_CLOEXEC);
      break;
    }
  }
  closedir(d);
  return fd;
}

/* Bytes an earlier opener left unread (answers it never took): dropped, so this process reads only its own. */
static void drain(int fd) {
  int flags = fcntl(fd, F_GETFL);
  uint8_t junk[4096];
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return;
  while (read(fd, junk, sizeof junk) > 0) {}
  fcntl(fd, F_SETFL, flags);
}

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w, n -= (size_t)w;
  }
  return 0;
}

static int read_all(int fd, uint8_t *p, size_t n) {
  while (n) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r, n -= (size_t)r;
  }
  return 0;
}

static int skip(int fd, size_t n) {
  uint8_t junk[4096];
  while (n) {
    size_t k = n < sizeof junk ? n : sizeof junk;
    if (read_all(fd, junk, k)) return -1;
    n -= k;
  }
  return 0;
}

static uint32_t le32(const uint8_t *b) {
  return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* The helper and link this process talks to (protocol.ts: notice; 0: not known yet). */
static uint64_t helper;
static uint32_t link_no;

enum { ANSWER, LOST, BROKEN };

static void adopt(const uint8_t *p) {
  helper = le32(p) | (uint64_t)le32(p + 4) << 32;
  link_no = le32(p + 8);
}

/* A notice (helper, link): LOST when it names another helper than the known one (a restore from a checkpoint started
 * a new one, which never saw the call's request), a later link of it (the one the request came on was dropped), or
 * comes before any helper is known (hello asks again); the process talks to that helper and link from now on. A
 * notice of the known link, or an older one, is no news. */
static int notice(const uint8_t *p) {
  uint64_t h = le32(p) | (uint64_t)le32(p + 4) << 32;
  int lost = !helper || h != helper || le32(p + 8) > link_no;
  if (lost) adopt(p);
  return lost ? LOST : ANSWER;
}

/* Reads frames until the answer to `id` (its status and results in `resp`). Answers to other ids (a request sent
 * before a restore, answered by the new helper) are skipped; notices are heard (LOST: the answer is not coming). */
static int await_answer(uint32_t id, cl_int *status, struct msg *resp) {
  for (;;) {
    uint8_t h[12];
    if (read_all(port_fd, h, 12)) return BROKEN;
    uint32_t rlen = le32(h), rid = le32(h + 4);
    if (rlen < 8 || rlen > ORIEL_MAX_FRAME) return BROKEN;
    if (rid == ORIEL_NOTICE_ID && rlen == 8 + 12 && le32(h + 8) == 0) {
      uint8_t p[12];
      if (read_all(port_fd, p, 12)) return BROKEN;
      if (notice(p) == LOST) return LOST;
      continue;
    }
    if (rid != id) {
      if (skip(port_fd, rlen - 8)) return BROKEN;
      continue;
    }
    *status = (cl_int)le32(h + 8);
    if (rlen > 8) {
      if (!(resp->data = malloc(rlen - 8))) {
        *status = CL_OUT_OF_HOST_MEMORY;
        return skip(port_fd, rlen - 8) ? BROKEN : ANSWER;
      }
      resp->len = resp->cap = rlen - 8;
      if (read_all(port_fd, resp->data, rlen - 8)) return BROKEN;
    }
    return ANSWER;
  }
}

/* One request and its answer on the open port (the lock held). */
static int exchange(uint16_t op, const struct msg *req, cl_int *status, struct msg *resp) {
  uint32_t id = next_id++;
  if (id == ORIEL_NOTICE_ID) id = next_id++;
  uint32_t len = (uint32_t)(8 + req->len);
  uint8_t head[12] = {len, len >> 8, len >> 16, len >> 24, id, id >> 8, id >> 16, id >> 24, op, op >> 8, 0, 0};
  if (write_all(port_fd, head, 12) || write_all(port_fd, req->data, req->len)) return BROKEN;
  return await_answer(id, status, resp);
}

/* Just opened: which helper and link answer here, asked (the notice of the link may have come before this process
 * opened the port, or been drained). A helper other than the known one means this process's handles are of the
 * helper of before: the new one refuses them (their tokens name the old session). */
static int hello(void) {
  int r = LOST;
  /* This process, for the helper: another's HELLO tells it that this one is gone, and what it left is released. */
  static uint64_t process;
  while (!process) {
    if (getrandom(&process, sizeof process, GRND_NONBLOCK) != sizeof process) /* never waits for entropy */
      process = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&process;
  }
  /* A notice under the HELLO (its link's, not drained; or a new helper's, should a restore come mid-HELLO, whose
   * answer would never come): asked again, of the helper it names. */
  for (int tries = 0; r == LOST && tries < 3; tries++) {
    struct msg req = {0}, resp = {0};
    cl_int st = CL_SUCCESS;
    msg_u64(&req, process);
    r = exchange(OP_HELLO, &req, &st, &resp);
    msg_free(&req);
    if (r == ANSWER && st == CL_SUCCESS && resp.len == 12) adopt(resp.data);
    msg_free(&resp);
  }
  return r == BROKEN ? -1 : 0;
}

cl_int oriel_call(uint16_t op, struct msg *req, struct msg *resp) {
  memset(resp, 0, sizeof *resp);
  if (req->failed) { msg_free(req); return CL_OUT_OF_HOST_MEMORY; }
  pthread_mutex_lock(&lock);
  cl_int status = CL_DEVICE_NOT_AVAILABLE;
  if (port_fd < 0 && (port_fd = open_port()) >= 0) {
    drain(port_fd);
    if (hello() != 0) close(port_fd), port_fd = -1;
  }
  if (port_fd >= 0) {
    int r = exchange(op, req, &status, resp);
    if (r != ANSWER) {
      msg_free(resp);
      status = CL_DEVICE_NOT_AVAILABLE;
    }
    /* A broken port is opened afresh by the next call; after LOST it is fine (the new helper or link serves it),
     * once it knows this process (what it holds there is this process's, not a gone one's to release). Between a
     * BROKEN and that next call another process may open the port: its HELLO then ends this one's objects. */
    if (r == BROKEN) close(port_fd), port_fd = -1;
    else if (r == LOST && hello() != 0) close(port_fd), port_fd = -1;
  }
  pthread_mutex_unlock(&lock);
  msg_free(req);
  return status;
}

cl_int oriel_info(const void *value, size_t n, size_t size, void *out, size_t *size_ret) {
  if (out) {
    if (size < n) return CL_INVALID_VALUE;
    if (n) memcpy(out, value, n);
  }
  if (size_ret) *size_ret = n;
  return CL_SUCCESS;
}
