/* The zero-copy window in the guest: the ivshmem-plain device's BAR2 (PCI 1af4:1110), mapped from sysfs
 * `resource2`, whose RAM is a file the host helper maps too. Buffers created with CL_MEM_ALLOC_HOST_PTR (or
 * USE_HOST_PTR) live here and travel as {offset, length}; the allocator below hands out page-aligned ranges.
 * ORIEL_OPENCL_WINDOW=<file> maps a file instead (host-side tests); ORIEL_OPENCL_NO_WINDOW=1 turns it off. */
#include "oriel.h"
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ALIGN 4096u
#define MAX_RANGES 4096

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *base;
static size_t size;
/* Allocated ranges, sorted by offset. */
static struct { size_t off, len; } ranges[MAX_RANGES];
static size_t nranges;

static int read_hex(const char *dir, const char *file, unsigned *v) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  int ok = fscanf(f, "%x", v) == 1;
  fclose(f);
  return ok ? 0 : -1;
}

/* The ivshmem-plain device's resource2, or -1. */
static int open_bar(void) {
  DIR *d = opendir("/sys/bus/pci/devices");
  if (!d) return -1;
  struct dirent *e;
  int fd = -1;
  while (fd < 0 && (e = readdir(d))) {
    char dir[512], path[600];
    unsigned vendor, device;
    snprintf(dir, sizeof dir, "/sys/bus/pci/devices/%s", e->d_name);
    if (read_hex(dir, "vendor", &vendor) || read_hex(dir, "device", &device)) continue;
    if (vendor != 0x1af4 || device != 0x1110) continue;
    snprintf(path, sizeof path, "%s/enable", dir); /* memory decoding on, should the firmware have left it off */
    int en = open(path, O_WRONLY | O_CLOEXEC);
    if (en >= 0) { (void)!write(en, "1", 1); close(en); }
    snprintf(path, sizeof path, "%s/resource2_wc", dir);
    if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
      snprintf(path, sizeof path, "%s/resource2", dir);
      fd = open(path, O_RDWR | O_CLOEXEC);
    }
  }
  closedir(d);
  return fd;
}

static void init(void) {
  if (getenv("ORIEL_OPENCL_NO_WINDOW")) return;
  const char *file = getenv("ORIEL_OPENCL_WINDOW");
  int fd = file ? open(file, O_RDWR | O_CLOEXEC) : open_bar();
  if (fd < 0) return;
  struct stat st;
  uint64_t host = 0;
  if (fstat(fd, &st) == 0 && st.st_size > 0 && oriel_window_size_remote(&host) == CL_SUCCESS &&
      host == (uint64_t)st.st_size) {
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) base = p, size = (size_t)st.st_size;
  }
  close(fd);
}

int oriel_window(uint8_t **b, size_t *n) {
  pthread_once(&once, init);
  if (b) *b = base;
  if (n) *n = size;
  return base != NULL;
}

int oriel_window_holds(const void *p, size_t len, size_t *off) {
  if (!oriel_window(NULL, NULL)) return 0;
  uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
  if (a < b || a - b >= size || len > size - (a - b)) return 0;
  *off = a - b;
  return 1;
}

int oriel_window_alloc(size_t len, size_t *off) {
  if (!oriel_window(NULL, NULL) || !len || len > size) return 0;
  size_t need = (len + ALIGN - 1) & ~(size_t)(ALIGN - 1), at = 0, i;
  pthread_mutex_lock(&lock);
  for (i = 0; i < nranges; i++) {
    if (ranges[i].off - at >= need) break;
    at = ranges[i].off + ranges[i].len;
  }
  int ok = nranges < MAX_RANGES && at <= size && size - at >= need;
  if (ok) {
    memmove(&ranges[i + 1], &ranges[i], (nranges - i) * sizeof ranges[0]);
    ranges[i].off = at, ranges[i].len = need;
    nranges++;
    *off = at;
  }
  pthread_mutex_unlock(&lock);
  return ok;
}

void oriel_window_free(size_t off) {
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < nranges; i++) {
    if (ranges[i].off != off) continue;
    memmove(&ranges[i], &ranges[i + 1], (nranges - i - 1) * sizeof ranges[0]);
    nranges--;
    break;
  }
  pthread_mutex_unlock(&lock);
}
