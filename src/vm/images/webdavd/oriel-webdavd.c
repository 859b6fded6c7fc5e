/*
 * oriel-webdavd: the desktop guest's end of the SPICE WebDAV port (org.spice-space.webdav.0), in place of
 * spice-webdavd. Same wire protocol on the port: each message, both ways, is a client id (int64 LE), a size (uint16
 * LE) and that many bytes; size 0 means that client closed. TCP connections to 127.0.0.1:9843 are relayed as mux
 * clients (davfs2 mounts ~/Shared through them), so any SPICE client's WebDAV server (remote-viewer's, Oriel's) works.
 *
 * And Oriel's fast file drops, fetched here without a TCP hop: the daemon opens mux clients of its own to the SPICE
 * client's server, long-polls GET /.oriel-drops/next ("ID/SIZE/NAME", or 204), refuses a file bigger than the free
 * space of ~/Downloads, streams GET /.oriel-drops/ID into ~/Downloads/.oriel-drop-ID.part (large write()s, as the
 * desktop user), renames it to a free name and POSTs ?status=done (the name) or ?status=failed (the error).
 *
 * One poll() loop, nothing blocks but file writes: the port is read only while no TCP client has too much queued,
 * TCP clients are read only while the port has little queued. The host closing the port (the SPICE client went
 * away) closes every client and the port; it is opened again and waited on until a client is there.
 *
 * Options: -p PORT_PATH (a virtio port, or a unix socket standing in for one), -l TCP_PORT (0: none), -d DOWNLOADS,
 * -u UID:GID (owner of what is written; default: the owner of DOWNLOADS' parent), -s STATUS_FILE, -1 (exit when the
 * port closes rather than waiting for it again: tests).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MUX_HEAD 10
#define MUX_MAX 65535
#define MAX_CLIENTS 128
#define PORT_IN_CAP (1 << 20)
/* TCP clients are not read while this much waits toward the port. */
#define PORT_OUT_HIGH (1 << 20)
/* The port is not read while one TCP client has this much waiting. */
#define CLIENT_OUT_HIGH (4 << 20)
#define FILE_BUF (1 << 20)
#define HEAD_MAX 16384
#define SMALL_MAX 4096
#define RESERVE (16LL << 20)

/* ---- growable byte queue: data in p[off, len) ---- */
struct buf {
  char *p;
  size_t off, len, cap;
};

static size_t buf_pending(const struct buf *b) { return b->len - b->off; }

static void buf_consume(struct buf *b, size_t n) {
  b->off += n;
  if (b->off == b->len) b->off = b->len = 0;
}

static void buf_append(struct buf *b, const void *d, size_t n) {
  if (b->len + n > b->cap && b->off) {
    memmove(b->p, b->p + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
  }
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      fprintf(stderr, "oriel-webdavd: out of memory\n");
      exit(1);
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
}

static void buf_free(struct buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* ---- options and globals ---- */
static const char *port_path = "/dev/virtio-ports/org.spice-space.webdav.0";
static int tcp_port = 9843;
static const char *downloads = "/home/user/Downloads";
static const char *status_path = "/run/oriel-webdavd.status";
static uid_t owner_uid;
static gid_t owner_gid;
static int once;
static volatile sig_atomic_t quitting;

static int64_t next_id = 1;

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void logf_(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("oriel-webdavd: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static void set_status(const char *s) {
  static char last[64];
  if (!status_path[0] || strcmp(last, s) == 0) return;
  snprintf(last, sizeof last, "%s", s);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", status_path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (write(fd, s, strlen(s)) >= 0 && write(fd, "\n", 1) >= 0) rename(tmp, status_path);
  close(fd);
}

/* ---- the port ---- */
enum { P_CLOSED, P_WAITING, P_CONNECTED };
static struct {
  int fd, state, is_socket;
  long long retry_at;
  char *in;
  size_t in_off, in_len;
  struct buf out;
} port = { .fd = -1 };

static void port_frame(int64_t id, const void *data, size_t n) {
  unsigned char h[MUX_HEAD];
  uint64_t u = (uint64_t)id;
  for (int i = 0; i < 8; i++) h[i] = (unsigned char)(u >> (8 * i));
  h[8] = (unsigned char)(n & 0xff);
  h[9] = (unsigned char)(n >> 8);
  buf_append(&port.out, h, MUX_HEAD);
  if (n) buf_append(&port.out, data, n);
}

/* ---- TCP clients relayed through the mux ---- */
struct client {
  int fd;
  int64_t id;
  int host_closed;
  struct buf out;
};
static struct client clients[MAX_CLIENTS];
static int nclients;
static int listen_fd = -1;

static void client_remove(int i, int tell_host) {
  if (tell_host && port.state == P_CONNECTED) port_frame(clients[i].id, NULL, 0);
  close(clients[i].fd);
  buf_free(&clients[i].out);
  clients[i] = clients[--nclients];
  memset(&clients[nclients], 0, sizeof clients[nclients]);
}

static int client_flush(int i) {
  struct client *c = &clients[i];
  while (buf_pending(&c->out)) {
    ssize_t n = write(c->fd, c->out.p + c->out.off, buf_pending(&c->out));
    if (n > 0) buf_consume(&c->out, (size_t)n);
    else if (n < 0 && errno == EINTR) continue;
    else if (n < 0 && errno == EAGAIN) return 0;
    else return -1;
  }
  return 0;
}

/* ---- HTTP responses to the daemon's own requests ---- */
enum { H_HEAD, H_LEN, H_CHUNK_SIZE, H_CHUNK_DATA, H_CHUNK_CRLF, H_TRAILER, H_EOF, H_DONE };
struct http {
  int state, status, chunked;
  long long length; /* Content-Length, -1 if none */
  unsigned long long left;
  char head[HEAD_MAX];
  size_t head_len;
  char line[256];
  size_t line_len;
  size_t trailer_len;
  /* the body: kept whole (small) or written to a file */
  char small[SMALL_MAX];
  size_t small_len;
  int file_fd;
  unsigned long long expect, got;
  char *fbuf;
  size_t fbuf_len;
  char err[256];
};

static int http_fail(struct http *h, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(h->err, sizeof h->err, fmt, ap);
  va_end(ap);
  return -1;
}

static void http_reset(struct http *h, int file_fd, unsigned long long expect) {
  char *fbuf = h->fbuf;
  memset(h, 0, offsetof(struct http, small));
  h->length = -1;
  h->small_len = 0;
  h->file_fd = file_fd;
  h->expect = expect;
  h->got = 0;
  h->fbuf = fbuf;
  h->fbuf_len = 0;
  h->err[0] = 0;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int http_flush_file(struct http *h) {
  if (h->fbuf_len && write_all(h->file_fd, h->fbuf, h->fbuf_len) < 0)
    return http_fail(h, "write: %s", strerror(errno));
  h->fbuf_len = 0;
  return 0;
}

static int http_body(struct http *h, const char *d, size_t n) {
  if (h->file_fd < 0) {
    if (h->small_len + n > SMALL_MAX) return http_fail(h, "response body too large");
    memcpy(h->small + h->small_len, d, n);
    h->small_len += n;
    return 0;
  }
  if (h->got + n > h->expect) return http_fail(h, "more bytes than announced (%llu)", h->expect);
  h->got += n;
  while (n) {
    size_t k = FILE_BUF - h->fbuf_len;
    if (k > n) k = n;
    /* Large pieces go straight to the file when nothing is buffered. */
    if (h->fbuf_len == 0 && n >= FILE_BUF) {
      if (write_all(h->file_fd, d, n) < 0) return http_fail(h, "write: %s", strerror(errno));
      return 0;
    }
    memcpy(h->fbuf + h->fbuf_len, d, k);
    h->fbuf_len += k;
    d += k;
    n -= k;
    if (h->fbuf_len == FILE_BUF && http_flush_file(h) < 0) return -1;
  }
  return 0;
}

static int parse_head(struct http *h) {
  h->head[h->head_len] = 0;
  char *p = h->head;
  if (strncmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ') return http_fail(h, "malformed status line");
  if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9') return http_fail(h, "malformed status line");
  if (p[12] != ' ' && p[12] != '\r') return http_fail(h, "malformed status line");
  h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
  if (h->status < 200) return http_fail(h, "unexpected status %d", h->status);
  /* Only a 200 is the file: any other answer is a short text. */
  if (h->status != 200) h->file_fd = -1;
  char *line = strstr(p, "\r\n");
  while (line && line[2] != '\r') {
    line += 2;
    char *end = strstr(line, "\r\n");
    if (!end) break;
    char *colon = memchr(line, ':', (size_t)(end - line));
    if (!colon || colon == line) return http_fail(h, "malformed header");
    for (char *q = line; q < colon; q++)
      if (*q <= ' ' || *q >= 0x7f) return http_fail(h, "malformed header");
    char *v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    char *ve = end;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    size_t klen = (size_t)(colon - line), vlen = (size_t)(ve - v);
    if (klen == 14 && strncasecmp(line, "content-length", 14) == 0) {
      if (vlen == 0 || vlen > 15 || h->length >= 0) return http_fail(h, "bad Content-Length");
      long long n = 0;
      for (size_t i = 0; i < vlen; i++) {
        if (v[i] < '0' || v[i] > '9') return http_fail(h, "bad Content-Length");
        n = n * 10 + (v[i] - '0');
      }
      h->length = n;
    } else if (klen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
      if (vlen != 7 || strncasecmp(v, "chunked", 7) != 0) return http_fail(h, "unsupported transfer encoding");
      h->chunked = 1;
    }
    line = end;
  }
  if (h->status == 204 || h->status == 304) h->state = H_DONE;
  else if (h->chunked) h->state = H_CHUNK_SIZE;
  else if (h->length >= 0) {
    h->left = (unsigned long long)h->length;
    h->state = h->left ? H_LEN : H_DONE;
  } else h->state = H_EOF;
  return 0;
}

/* A line (chunk size, trailer) byte by byte; 1 when complete, 0 for more, -1 if too long. */
static int take_line(struct http *h, const char **d, size_t *n) {
  while (*n) {
    char c = **d;
    (*d)++;
    (*n)--;
    if (h->line_len >= sizeof h->line - 1) return -1;
    h->line[h->line_len++] = c;
    if (c == '\n') {
      h->line[h->line_len] = 0;
      return 1;
    }
  }
  return 0;
}

/* Feeds response bytes; -1 with h->err on a malformed or refused response. */
static int http_feed(struct http *h, const char *d, size_t n) {
  while (n && h->state != H_DONE) {
    switch (h->state) {
    case H_HEAD: {
      size_t from = h->head_len > 3 ? h->head_len - 3 : 0;
      size_t k = n;
      if (h->head_len + k > HEAD_MAX - 1) k = HEAD_MAX - 1 - h->head_len;
      memcpy(h->head + h->head_len, d, k);
      h->head_len += k;
      char *end = memmem(h->head + from, h->head_len - from, "\r\n\r\n", 4);
      if (!end) {
        if (h->head_len >= HEAD_MAX - 1) return http_fail(h, "response head too large");
        d += k;
        n -= k;
        break;
      }
      size_t used = (size_t)(end + 4 - h->head) - (h->head_len - k);
      h->head_len = (size_t)(end + 4 - h->head);
      d += used;
      n -= used;
      if (parse_head(h) < 0) return -1;
      break;
    }
    case H_LEN: {
      size_t k = n < h->left ? n : (size_t)h->left;
      if (http_body(h, d, k) < 0) return -1;
      h->left -= k;
      d += k;
      n -= k;
      if (!h->left) h->state = H_DONE;
      break;
    }
    case H_EOF:
      if (http_body(h, d, n) < 0) return -1;
      n = 0;
      break;
    case H_CHUNK_SIZE: {
      int r = take_line(h, &d, &n);
      if (r < 0) return http_fail(h, "malformed chunk");
      if (r == 0) break;
      unsigned long long v = 0;
      size_t i = 0;
      for (; i < 12; i++) {
        char c = h->line[i];
        int x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (x < 0) break;
        v = v * 16 + (unsigned)x;
      }
      char t = h->line[i];
      if (i == 0 || (t != ';' && t != '\r') || h->line[h->line_len - 2] != '\r') return http_fail(h, "malformed chunk");
      h->line_len = 0;
      h->left = v;
      h->state = v ? H_CHUNK_DATA : H_TRAILER;
      break;
    }
    case H_CHUNK_DATA: {
      size_t k = n < h->left ? n : (size_t)h->left;
      if (http_body(h, d, k) < 0) return -1;
      h->left -= k;
      d += k;
      n -= k;
      if (!h->left) h->state = H_CHUNK_CRLF;
      break;
    }
    case H_CHUNK_CRLF: {
      int r = take_line(h, &d, &n);
      if (r < 0 || (r == 1 && strcmp(h->line, "\r\n") != 0)) return http_fail(h, "malformed chunk");
      if (r == 1) {
        h->line_len = 0;
        h->state = H_CHUNK_SIZE;
      }
      break;
    }
    case H_TRAILER: {
      int r = take_line(h, &d, &n);
      if (r < 0) return http_fail(h, "malformed trailer");
      if (r == 0) break;
      h->trailer_len += h->line_len;
      if (h->trailer_len > HEAD_MAX) return http_fail(h, "trailers too large");
      if (h->line_len < 2 || h->line[h->line_len - 2] != '\r') return http_fail(h, "malformed trailer");
      if (h->line_len == 2) h->state = H_DONE;
      h->line_len = 0;
      break;
    }
    }
  }
  if (n) return http_fail(h, "bytes after the response");
  return 0;
}

/* The mux client closed: a body read to its end is complete, anything else is cut. */
static int http_eof(struct http *h) {
  if (h->state == H_EOF) h->state = H_DONE;
  if (h->state != H_DONE) return http_fail(h, "the client closed the connection before the end of the response");
  return 0;
}

/* ---- drops ---- */
enum { D_IDLE, D_POLL, D_FETCH, D_REPORT };
static struct {
  int state;
  int64_t id; /* the mux client of the request under way */
  long long at; /* D_IDLE: when to poll; others: deadline */
  unsigned long drop;
  unsigned long long size;
  char name[256];
  int dir_fd, file_fd;
  struct http h;
} dr = { .dir_fd = -1, .file_fd = -1 };

#define POLL_TIMEOUT_MS 45000
#define STALL_TIMEOUT_MS 60000
#define REPORT_TIMEOUT_MS 30000

static void as_owner(int on) {
  if (getuid() != 0) return;
  setfsgid(on ? owner_gid : 0);
  setfsuid(on ? owner_uid : 0);
}

static void part_name(char *out, size_t n, unsigned long id) { snprintf(out, n, ".oriel-drop-%lu.part", id); }

static void drop_close_files(int remove_part) {
  if (dr.file_fd >= 0) close(dr.file_fd);
  dr.file_fd = -1;
  if (remove_part && dr.dir_fd >= 0) {
    char part[64];
    part_name(part, sizeof part, dr.drop);
    as_owner(1);
    unlinkat(dr.dir_fd, part, 0);
    as_owner(0);
  }
  if (dr.dir_fd >= 0) close(dr.dir_fd);
  dr.dir_fd = -1;
}

static void drop_request(int state, const char *method, const char *path, const char *body, int timeout) {
  char req[2048];
  size_t blen = body ? strlen(body) : 0;
  int n = body
    ? snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Length: %zu\r\n\r\n%s", method, path, blen, body)
    : snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n", method, path);
  if (n < 0 || (size_t)n >= sizeof req) n = (int)sizeof req - 1;
  dr.id = next_id++;
  dr.state = state;
  dr.at = now_ms() + timeout;
  http_reset(&dr.h, state == D_FETCH ? dr.file_fd : -1, dr.size);
  port_frame(dr.id, req, (size_t)n);
}

static void drop_report(int ok, const char *text) {
  char path[96];
  snprintf(path, sizeof path, "/.oriel-drops/%lu?status=%s", dr.drop, ok ? "done" : "failed");
  if (!ok) logf_("drop %lu failed: %s", dr.drop, text);
  drop_request(D_REPORT, "POST", path, text, REPORT_TIMEOUT_MS);
  set_status("reporting");
}

static void drop_idle(long long delay) {
  dr.state = D_IDLE;
  dr.id = 0;
  dr.at = now_ms() + delay;
  set_status(port.state == P_CONNECTED ? "idle" : "waiting for the SPICE client");
}

static void drop_poll(void) {
  drop_request(D_POLL, "GET", "/.oriel-drops/next", NULL, POLL_TIMEOUT_MS);
  set_status("polling");
}

/* A plain file name: the last path component, no control characters, not empty, "." or "..". */
static void safe_name(const char *in, char *out, size_t cap) {
  const char *s = strrchr(in, '/');
  s = s ? s + 1 : in;
  size_t n = 0;
  for (; *s && n < cap - 1 && n < 200; s++) {
    unsigned char c = (unsigned char)*s;
    out[n++] = c < 0x20 || c == 0x7f ? '_' : (char)c;
  }
  /* Not cut inside a UTF-8 sequence. */
  if (*s && n) {
    size_t k = n;
    while (k && ((unsigned char)out[k - 1] & 0xc0) == 0x80) k--;
    if (k && (unsigned char)out[k - 1] >= 0xc0) n = k - 1;
  }
  out[n] = 0;
  if (n == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0) snprintf(out, cap, "file");
}

static void drop_offered(void) {
  /* "ID/SIZE/NAME\n" */
  struct http *h = &dr.h;
  h->small[h->small_len < SMALL_MAX ? h->small_len : SMALL_MAX - 1] = 0;
  char *body = h->small, *s1 = strchr(body, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;
  if (!s1 || !s2 || s1 == body || s1 - body > 9 || s2 == s1 + 1 || s2 - s1 - 1 > 18) {
    logf_("malformed offer from the client");
    return drop_idle(2000);
  }
  unsigned long id = 0;
  unsigned long long size = 0;
  for (char *p = body; p < s1; p++) {
    if (*p < '0' || *p > '9') return logf_("malformed offer from the client"), drop_idle(2000);
    id = id * 10 + (unsigned long)(*p - '0');
  }
  for (char *p = s1 + 1; p < s2; p++) {
    if (*p < '0' || *p > '9') return logf_("malformed offer from the client"), drop_idle(2000);
    size = size * 10 + (unsigned long long)(*p - '0');
  }
  char *name = s2 + 1;
  size_t nl = strlen(name);
  while (nl && (name[nl - 1] == '\n' || name[nl - 1] == '\r')) name[--nl] = 0;
  dr.drop = id;
  dr.size = size;
  safe_name(name, dr.name, sizeof dr.name);
  char err[512];
  as_owner(1);
  mkdir(downloads, 0755);
  dr.dir_fd = open(downloads, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  as_owner(0);
  if (dr.dir_fd < 0) {
    snprintf(err, sizeof err, "cannot open ~/Downloads: %s", strerror(errno));
    return drop_report(0, err);
  }
  struct statvfs vfs;
  if (fstatvfs(dr.dir_fd, &vfs) == 0) {
    long long avail = (long long)vfs.f_bavail * (long long)vfs.f_frsize;
    if ((long long)size > avail - RESERVE) {
      snprintf(err, sizeof err, "no space left in ~/Downloads for %s (%llu bytes, %lld free)", dr.name, size, avail);
      drop_close_files(0);
      return drop_report(0, err);
    }
  }
  char part[64];
  part_name(part, sizeof part, id);
  as_owner(1);
  dr.file_fd = openat(dr.dir_fd, part, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  as_owner(0);
  if (dr.file_fd < 0) {
    snprintf(err, sizeof err, "cannot create %s in ~/Downloads: %s", part, strerror(errno));
    drop_close_files(0);
    return drop_report(0, err);
  }
  char path[64];
  snprintf(path, sizeof path, "/.oriel-drops/%lu", id);
  drop_request(D_FETCH, "GET", path, NULL, STALL_TIMEOUT_MS);
  char st[64];
  snprintf(st, sizeof st, "fetching %lu", id);
  set_status(st);
}

static void drop_fetched(void) {
  char err[512], part[64], target[300];
  part_name(part, sizeof part, dr.drop);
  if (dr.h.status != 200) {
    snprintf(err, sizeof err, "the client answered %d", dr.h.status);
    drop_close_files(1);
    return drop_report(0, err);
  }
  if (http_flush_file(&dr.h) < 0 || dr.h.got != dr.size) {
    if (!dr.h.err[0]) snprintf(dr.h.err, sizeof dr.h.err, "%llu bytes of %llu arrived", dr.h.got, dr.size);
    snprintf(err, sizeof err, "%s", dr.h.err);
    drop_close_files(1);
    return drop_report(0, err);
  }
  if (close(dr.file_fd) < 0) {
    dr.file_fd = -1;
    snprintf(err, sizeof err, "close: %s", strerror(errno));
    drop_close_files(1);
    return drop_report(0, err);
  }
  dr.file_fd = -1;
  int done = 0;
  as_owner(1);
  for (int n = 0; n < 10000 && !done; n++) {
    if (n == 0) snprintf(target, sizeof target, "%s", dr.name);
    else snprintf(target, sizeof target, "%s (%d)", dr.name, n);
    if (renameat2(dr.dir_fd, part, dr.dir_fd, target, RENAME_NOREPLACE) == 0) done = 1;
    else if (errno == EEXIST) continue;
    else if (errno == EINVAL || errno == ENOSYS) {
      /* No RENAME_NOREPLACE here: a link fails the same way if the name is taken. */
      if (linkat(dr.dir_fd, part, dr.dir_fd, target, 0) == 0) {
        unlinkat(dr.dir_fd, part, 0);
        done = 1;
      } else if (errno != EEXIST) break;
    } else break;
  }
  int e = errno;
  as_owner(0);
  if (!done) {
    snprintf(err, sizeof err, "rename: %s", strerror(e));
    drop_close_files(1);
    return drop_report(0, err);
  }
  drop_close_files(0);
  logf_("drop %lu: %llu bytes into %s", dr.drop, dr.size, target);
  drop_report(1, target);
}

/* The response to the request under way is complete (or failed: ok = 0). */
static void drop_response(int ok) {
  port_frame(dr.id, NULL, 0);
  int state = dr.state;
  dr.id = 0;
  if (state == D_POLL) {
    if (!ok) return logf_("poll: %s", dr.h.err), drop_idle(2000);
    if (dr.h.status == 204) return drop_poll();
    if (dr.h.status != 200) return drop_idle(10000); /* a client with no drop box (e.g. remote-viewer's) */
    return drop_offered();
  }
  if (state == D_FETCH) {
    if (!ok) {
      char err[300];
      snprintf(err, sizeof err, "%s", dr.h.err);
      drop_close_files(1);
      return drop_report(0, err);
    }
    return drop_fetched();
  }
  drop_idle(0);
}

static void drop_timers(long long now) {
  if (port.state != P_CONNECTED) return;
  if (dr.state == D_IDLE && now >= dr.at) return drop_poll();
  if (dr.state != D_IDLE && now >= dr.at) {
    http_fail(&dr.h, "no answer from the client for %d s", (dr.state == D_FETCH ? STALL_TIMEOUT_MS : POLL_TIMEOUT_MS) / 1000);
    drop_response(0);
  }
}

/* The port closed: the transfer under way is lost (the client that offered it is gone). */
static void drop_abort(void) {
  if (dr.state == D_FETCH) drop_close_files(1);
  else drop_close_files(0);
  drop_idle(300);
}

/* ---- the port's frames ---- */
static int find_client(int64_t id) {
  for (int i = 0; i < nclients; i++)
    if (clients[i].id == id) return i;
  return -1;
}

/* Dispatches whole frames; stops while a TCP client has too much queued. */
static void port_parse(void) {
  while (port.in_len - port.in_off >= MUX_HEAD) {
    const unsigned char *f = (const unsigned char *)port.in + port.in_off;
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--) u = (u << 8) | f[i];
    int64_t id = (int64_t)u;
    size_t n = (size_t)f[8] | ((size_t)f[9] << 8);
    if (port.in_len - port.in_off < MUX_HEAD + n) break;
    const char *data = (const char *)f + MUX_HEAD;
    int i = find_client(id);
    if (i >= 0 && buf_pending(&clients[i].out) > CLIENT_OUT_HIGH) return;
    port.in_off += MUX_HEAD + n;
    if (i >= 0) {
      if (n == 0) {
        clients[i].host_closed = 1;
        if (!buf_pending(&clients[i].out)) client_remove(i, 0);
      } else {
        buf_append(&clients[i].out, data, n);
        if (client_flush(i) < 0) client_remove(i, 1);
      }
    } else if (dr.state != D_IDLE && id == dr.id) {
      if (n == 0) drop_response(http_eof(&dr.h) == 0);
      else if (http_feed(&dr.h, data, n) < 0) drop_response(0);
      else if (dr.h.state == H_DONE) drop_response(1);
      else dr.at = now_ms() + (dr.state == D_FETCH ? STALL_TIMEOUT_MS : POLL_TIMEOUT_MS);
    }
    /* Any other id: a client already gone, or not one of ours: dropped. */
  }
  if (port.in_off == port.in_len) port.in_off = port.in_len = 0;
  else if (port.in_off > PORT_IN_CAP / 2) {
    memmove(port.in, port.in + port.in_off, port.in_len - port.in_off);
    port.in_len -= port.in_off;
    port.in_off = 0;
  }
}

static void port_close(void) {
  while (nclients) client_remove(nclients - 1, 0);
  drop_abort();
  if (port.fd >= 0) close(port.fd);
  port.fd = -1;
  port.state = P_CLOSED;
  port.in_off = port.in_len = 0;
  buf_free(&port.out);
  port.retry_at = now_ms() + 1000;
  set_status("waiting for the SPICE client");
  if (once) quitting = 1;
}

static void port_open(void) {
  struct stat st;
  int fd = -1;
  if (stat(port_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", port_path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
      close(fd);
      fd = -1;
    }
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  } else {
    fd = open(port_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  }
  port.is_socket = fd >= 0 && S_ISSOCK(st.st_mode);
  port.retry_at = now_ms();
  if (fd < 0) {
    port.retry_at = now_ms() + 500;
    if (once) quitting = 1;
    return;
  }
  port.fd = fd;
  port.state = P_WAITING;
}

/* A virtio port signals HUP while no host side is connected to it. */
static void port_check(void) {
  struct pollfd p = { .fd = port.fd, .events = POLLIN | POLLOUT };
  if (poll(&p, 1, 0) < 0) return;
  if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) {
    port.retry_at = now_ms() + 500;
    /* A socket standing in for the port is dead once hung up: connect again. */
    if (port.is_socket) {
      close(port.fd);
      port.fd = -1;
      port.state = P_CLOSED;
      if (once) quitting = 1;
    }
    return;
  }
  port.state = P_CONNECTED;
  logf_("the SPICE client is there");
  drop_idle(0);
}

static void port_read(void) {
  for (;;) {
    if (port.in_len == PORT_IN_CAP) {
      port_parse();
      if (port.in_len == PORT_IN_CAP) return;
    }
    ssize_t n = read(port.fd, port.in + port.in_len, PORT_IN_CAP - port.in_len);
    if (n > 0) {
      port.in_len += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    logf_("the SPICE client went away");
    port_close();
    return;
  }
  port_parse();
}

static void port_write(void) {
  while (buf_pending(&port.out)) {
    ssize_t n = write(port.fd, port.out.p + port.out.off, buf_pending(&port.out));
    if (n > 0) buf_consume(&port.out, (size_t)n);
    else if (n < 0 && errno == EINTR) continue;
    else if (n < 0 && errno == EAGAIN) return;
    else {
      logf_("writing to the port: %s", n < 0 ? strerror(errno) : "closed");
      port_close();
      return;
    }
  }
}

/* ---- main loop ---- */
static void on_signal(int s) {
  (void)s;
  quitting = 1;
}

static void accept_clients(void) {
  for (;;) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (port.state != P_CONNECTED || nclients == MAX_CLIENTS) {
      close(fd); /* no SPICE client: nobody would answer */
      continue;
    }
    struct client *c = &clients[nclients++];
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->id = next_id++;
  }
}

static void client_read(int i) {
  static char frame[MUX_HEAD + MUX_MAX];
  ssize_t n = read(clients[i].fd, frame + MUX_HEAD, MUX_MAX);
  if (n > 0) port_frame(clients[i].id, frame + MUX_HEAD, (size_t)n);
  else if (n == 0 || (errno != EAGAIN && errno != EINTR)) client_remove(i, 1);
}

static int parse_owner(const char *s) {
  char *e;
  unsigned long u = strtoul(s, &e, 10);
  if (*e != ':') return -1;
  unsigned long g = strtoul(e + 1, &e, 10);
  if (*e) return -1;
  owner_uid = (uid_t)u;
  owner_gid = (gid_t)g;
  return 0;
}

int main(int argc, char **argv) {
  int opt, have_owner = 0;
  while ((opt = getopt(argc, argv, "p:l:d:u:s:1")) != -1) {
    switch (opt) {
    case 'p': port_path = optarg; break;
    case 'l': tcp_port = atoi(optarg); break;
    case 'd': downloads = optarg; break;
    case 's': status_path = optarg; break;
    case '1': once = 1; break;
    case 'u':
      if (parse_owner(optarg) < 0) return fprintf(stderr, "oriel-webdavd: -u takes UID:GID\n"), 2;
      have_owner = 1;
      break;
    default:
      fprintf(stderr, "usage: oriel-webdavd [-p PORT_PATH] [-l TCP_PORT] [-d DOWNLOADS] [-u UID:GID] [-s STATUS] [-1]\n");
      return 2;
    }
  }
  if (!have_owner) {
    char parent[4096];
    snprintf(parent, sizeof parent, "%s/..", downloads);
    struct stat st;
    if (stat(parent, &st) < 0) return fprintf(stderr, "oriel-webdavd: %s: %s\n", parent, strerror(errno)), 1;
    owner_uid = st.st_uid;
    owner_gid = st.st_gid;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = { .sa_handler = on_signal };
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  port.in = malloc(PORT_IN_CAP);
  dr.h.fbuf = malloc(FILE_BUF);
  if (!port.in || !dr.h.fbuf) return 1;

  if (tcp_port > 0) {
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)tcp_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (bind(listen_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(listen_fd, 64) < 0) {
      fprintf(stderr, "oriel-webdavd: 127.0.0.1:%d: %s\n", tcp_port, strerror(errno));
      return 1;
    }
  }
  set_status("waiting for the SPICE client");
  port_open();

  struct pollfd fds[MAX_CLIENTS + 2];
  while (!quitting) {
    long long now = now_ms();
    if (port.state == P_CLOSED && now >= port.retry_at) port_open();
    if (port.state == P_WAITING && now >= port.retry_at) port_check();
    drop_timers(now);
    if (port.state == P_CONNECTED) {
      port_parse();
      port_write();
    }
    /* Clients the host closed leave once what it sent them is written. */
    for (int i = nclients - 1; i >= 0; i--)
      if (clients[i].host_closed && !buf_pending(&clients[i].out)) client_remove(i, 0);

    int nf = 0, blocked = 0;
    for (int i = 0; i < nclients; i++)
      if (buf_pending(&clients[i].out) > CLIENT_OUT_HIGH) blocked = 1;
    int port_at = -1, listen_at = -1;
    if (listen_fd >= 0) {
      listen_at = nf;
      fds[nf++] = (struct pollfd){ .fd = listen_fd, .events = POLLIN };
    }
    if (port.state == P_CONNECTED) {
      port_at = nf;
      short ev = 0;
      if (!blocked && port.in_len < PORT_IN_CAP) ev |= POLLIN;
      if (buf_pending(&port.out)) ev |= POLLOUT;
      fds[nf++] = (struct pollfd){ .fd = port.fd, .events = ev };
    }
    int client_at = nf;
    for (int i = 0; i < nclients; i++) {
      short ev = 0;
      if (port.state == P_CONNECTED && buf_pending(&port.out) < PORT_OUT_HIGH) ev |= POLLIN;
      if (buf_pending(&clients[i].out)) ev |= POLLOUT;
      fds[nf++] = (struct pollfd){ .fd = clients[i].fd, .events = ev };
    }
    long long wake = now + 1000;
    if (port.state != P_CONNECTED && port.retry_at < wake) wake = port.retry_at;
    if (port.state == P_CONNECTED && dr.at < wake) wake = dr.at;
    int timeout = wake > now ? (int)(wake - now) : 0;
    int r = poll(fds, (nfds_t)nf, timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      logf_("poll: %s", strerror(errno));
      return 1;
    }
    if (r == 0) continue;
    /* Clients first (their indexes shift as they leave, so from the end), then the port, then new clients. */
    int nc = nclients;
    for (int i = nc - 1; i >= 0; i--) {
      short re = fds[client_at + i].revents;
      if (!re || i >= nclients || clients[i].fd != fds[client_at + i].fd) continue;
      if (re & POLLOUT && client_flush(i) < 0) {
        client_remove(i, 1);
        continue;
      }
      if (re & (POLLIN | POLLHUP | POLLERR)) client_read(i);
    }
    if (port_at >= 0 && port.state == P_CONNECTED) {
      short re = fds[port_at].revents;
      if (re & POLLOUT) port_write();
      if (port.state == P_CONNECTED && re & (POLLIN | POLLHUP | POLLERR)) {
        if (!blocked && port.in_len < PORT_IN_CAP) port_read();
        else if (re & (POLLHUP | POLLERR)) {
          logf_("the SPICE client went away");
          port_close();
        }
      }
    }
    if (listen_at >= 0 && fds[listen_at].revents & POLLIN) accept_clients();
  }
  if (port.fd >= 0) port_write();
  drop_abort();
  if (status_path[0]) unlink(status_path);
  return 0;
}
