// The guest side of bench/opencl-gpa.ts: what a guest OpenCL library would do to hand the host an ordinary
// (malloc'd) buffer by its guest-physical pages instead of the ivshmem window. For each size and layout it
// allocates a page-aligned buffer, fills it with a pattern (word i = i ^ seed << 40), pins it (mlock), reads the
// page-frame numbers of its pages from /proc/self/pagemap (root only: PFNs read as 0 without CAP_SYS_ADMIN) and
// merges them into runs of contiguous guest-physical pages. It writes the runs to DIR/runs-LAYOUT-MiB ("pfn count"
// in hex, one run a line), appends a result line to DIR/results and waits for SIGUSR1 (the host maps and checks the
// pages meanwhile) before it frees the buffer and goes on.
//   layouts: thp (madvise MADV_HUGEPAGE), 4k (MADV_NOHUGEPAGE), scattered (4k, allocated after a buffer of the same
//   size whose every other page was freed: a guest whose free memory is fragmented)
//   result: gpa LAYOUT MiB PAGES RUNS PIN_US READ_US MERGE_US SEED COPY_US (a memcpy of the buffer: thp only)
// Usage: opencl-gpa DIR MiB...   (built with the host's gcc, run in the tiny-opencl guest, which has glibc)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define PFN_MASK ((1ULL << 55) - 1)
#define PRESENT (1ULL << 63)

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void die(const char *what) {
  fprintf(stderr, "error %s: %s\n", what, strerror(errno));
  exit(1);
}

static char *alloc(size_t size, int advice) {
  // Over-allocate so the buffer starts on a 2 MiB boundary: a huge page needs one.
  size_t extra = 2UL << 20;
  char *raw = mmap(NULL, size + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) die("mmap");
  char *p = (char *)(((uintptr_t)raw + extra - 1) & ~(extra - 1));
  if (p > raw) munmap(raw, p - raw);
  munmap(p + size, raw + extra - p);
  if (madvise(p, size, advice)) die("madvise");
  return p;
}

static void run(const char *dir, const char *layout, size_t mib, int pagemap, uint64_t seed) {
  size_t size = mib << 20, pages = size / PAGE;
  char *holes = NULL;
  if (!strcmp(layout, "scattered")) {
    holes = alloc(size, MADV_NOHUGEPAGE);
    memset(holes, 1, size);
    for (size_t i = 0; i < pages; i += 2) munmap(holes + i * PAGE, PAGE);
  }
  char *p = alloc(size, !strcmp(layout, "thp") ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  uint64_t *w = (uint64_t *)p;
  for (size_t i = 0; i < size / 8; i++) w[i] = i ^ (seed << 40);
  // For comparison (once a size): one memcpy of the buffer into another, faulted in already, as a program copies
  // an ordinary buffer into the window (or the ICD into a window shadow).
  double copy_us = 0;
  if (!strcmp(layout, "thp")) {
    char *dst = alloc(size, MADV_HUGEPAGE);
    memset(dst, 0, size);
    double c0 = now_us();
    memcpy(dst, p, size);
    copy_us = now_us() - c0;
    munmap(dst, size);
  }

  double t0 = now_us();
  if (mlock(p, size)) die("mlock");
  double t1 = now_us();
  uint64_t *e = malloc(pages * 8);
  if (!e) die("malloc");
  size_t want = pages * 8, got = 0;
  off_t at = (off_t)((uintptr_t)p / PAGE * 8);
  while (got < want) {
    ssize_t n = pread(pagemap, (char *)e + got, want - got, at + (off_t)got);
    if (n <= 0) die("pread pagemap");
    got += (size_t)n;
  }
  double t2 = now_us();
  // Runs of contiguous page frames, as (start, count) pairs.
  uint64_t *rl = malloc(pages * 16);
  if (!rl) die("malloc");
  size_t runs = 0;
  uint64_t start = 0, count = 0;
  for (size_t i = 0; i < pages; i++) {
    if (!(e[i] & PRESENT) || !(e[i] & PFN_MASK)) {
      fprintf(stderr, "error page %zu not present or no PFN (not root?)\n", i);
      exit(1);
    }
    uint64_t pfn = e[i] & PFN_MASK;
    if (count && pfn == start + count) {
      count++;
      continue;
    }
    if (count) rl[2 * runs] = start, rl[2 * runs + 1] = count, runs++;
    start = pfn, count = 1;
  }
  rl[2 * runs] = start, rl[2 * runs + 1] = count, runs++;
  double t3 = now_us();

  char path[512];
  snprintf(path, sizeof path, "%s/runs-%s-%zu", dir, layout, mib);
  FILE *f = fopen(path, "w");
  if (!f) die("fopen runs");
  for (size_t r = 0; r < runs; r++) fprintf(f, "%llx %llx\n", (unsigned long long)rl[2 * r],
                                            (unsigned long long)rl[2 * r + 1]);
  fclose(f);
  free(e);
  free(rl);
  snprintf(path, sizeof path, "%s/results", dir);
  f = fopen(path, "a");
  if (!f) die("fopen results");
  fprintf(f, "gpa %s %zu %zu %zu %.0f %.0f %.0f %llu %.0f\n", layout, mib, pages, runs, t1 - t0, t2 - t1, t3 - t2,
          (unsigned long long)seed, copy_us);
  fclose(f);

  // The host maps these pages now; SIGUSR1 says it is done.
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  int sig;
  sigwait(&usr1, &sig);
  munlock(p, size);
  munmap(p, size);
  if (holes)
    for (size_t i = 1; i < pages; i += 2) munmap(holes + i * PAGE, PAGE);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: opencl-gpa DIR MiB...\n");
    return 2;
  }
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, NULL);
  int pagemap = open("/proc/self/pagemap", O_RDONLY);
  if (pagemap < 0) die("open /proc/self/pagemap");
  const char *layouts[] = {"thp", "4k", "scattered"};
  uint64_t seed = 1;
  for (int a = 2; a < argc; a++) {
    size_t mib = strtoul(argv[a], NULL, 10);
    // The scattered layout needs twice the size at once: only up to 256 MiB.
    for (int l = 0; l < 3; l++)
      if (l < 2 || mib <= 256) run(argv[1], layouts[l], mib, pagemap, seed++);
  }
  char path[512];
  snprintf(path, sizeof path, "%s/results", argv[1]);
  FILE *f = fopen(path, "a");
  if (!f) die("fopen results");
  fprintf(f, "end\n");
  fclose(f);
  return 0;
}
