/*
 * memcheck: a guest program that rewrites its own memory as fast as it can and can prove it consistent.
 * Built by test/checkpoint/memcheck.ts with the host's gcc (static, no libc: raw Linux x86-64 system calls), copied
 * into the tiny guest and started there in the background.
 *
 *   memcheck MIB [BLOCK_KIB]      (default 64 KiB blocks)
 *
 * It owns MIB MiB in blocks. Every block holds a header (magic ^ index, index, generation, checksum) and a payload
 * whose every 64-bit word is a function of (index, generation, word position); the program's own table keeps each
 * block's current generation. It walks the blocks in a fixed scattered order and, for each one, first verifies it
 * (header, every word, checksum against the table) and then rewrites it whole with the next generation. Any block
 * that does not hold what the program last wrote there counts as an inconsistency: a page from another instant, from
 * another block, or torn, after a checkpoint was restored.
 *
 * Between blocks it looks for /tmp/mc.req: when present it verifies every block (the whole buffer, at one point of
 * its own program order), writes the result to /tmp/mc.out (atomically: a temp file, renamed) and deletes the
 * request. About four times a second it writes /tmp/mc.status the same way. Both are one line:
 *   pid=P buf=A mib=M block=K passes=N rewrites=R bytes=B ns=T bad=E first=I:G:W checked=C
 * bytes = bytes rewritten since start, ns = CLOCK_MONOTONIC at that moment, bad = inconsistencies found (before a
 * rewrite or in a full check), first = block:expected generation:word of the first one, checked = blocks verified by
 * the last full check (mc.out only), buf = the buffer's address (decimal; block i starts at buf + i * K KiB).
 */
typedef unsigned long u64;
typedef long i64;

static i64 sys(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f) {
  i64 r;
  register i64 r10 __asm__("r10") = d;
  register i64 r8 __asm__("r8") = e;
  register i64 r9 __asm__("r9") = f;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return r;
}
#define SYS_write 1
#define SYS_open 2
#define SYS_close 3
#define SYS_mmap 9
#define SYS_access 21
#define SYS_getpid 39
#define SYS_rename 82
#define SYS_unlink 87
#define SYS_clock_gettime 228
#define SYS_exit_group 231

static void die(const char *msg) {
  i64 n = 0;
  while (msg[n]) n++;
  sys(SYS_write, 2, (i64)msg, n, 0, 0, 0);
  sys(SYS_exit_group, 1, 0, 0, 0, 0, 0);
}

static u64 now_ns(void) {
  i64 ts[2];
  sys(SYS_clock_gettime, 1 /* CLOCK_MONOTONIC */, (i64)ts, 0, 0, 0, 0);
  return (u64)ts[0] * 1000000000UL + (u64)ts[1];
}

static u64 parse(const char *s) {
  u64 v = 0;
  if (!s || !*s) return 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return 0;
    v = v * 10 + (u64)(*s - '0');
  }
  return v;
}

#define MAGIC 0x4f52494d454d434bUL /* "ORIMEMCK" */
#define K1 0x9e3779b97f4a7c15UL
#define K2 0xbf58476d1ce4e5b9UL
#define HDR 4

static u64 *buf;       /* nblocks blocks of words u64 each */
static u64 *gens;      /* each block's generation, as last written */
static u64 nblocks, words;
static u64 passes, rewrites, bad, first_i = ~0UL, first_g, first_w;

static inline u64 seed(u64 i, u64 g) {
  return (i + 1) * K2 ^ g * K1;
}

static void inconsistent(u64 i, u64 w) {
  if (bad++ == 0) {
    first_i = i;
    first_g = gens[i];
    first_w = w;
  }
}

/* 1 when block i holds what generation gens[i] wrote there. */
static int check(u64 i) {
  u64 *b = buf + i * words;
  u64 g = gens[i];
  if (b[0] != (MAGIC ^ i) || b[1] != i || b[2] != g) {
    inconsistent(i, b[1] != i ? 1 : 2);
    return 0;
  }
  u64 x = seed(i, g), k = HDR * K1, sum = 0;
  for (u64 w = HDR; w < words; w++, k += K1) {
    u64 v = b[w];
    if (v != (x ^ k)) {
      inconsistent(i, w);
      return 0;
    }
    sum += v;
  }
  if (b[3] != sum) {
    inconsistent(i, 3);
    return 0;
  }
  return 1;
}

static void fill(u64 i, u64 g) {
  u64 *b = buf + i * words;
  u64 x = seed(i, g), k = HDR * K1, sum = 0;
  for (u64 w = HDR; w < words; w++, k += K1) {
    u64 v = x ^ k;
    b[w] = v;
    sum += v;
  }
  b[0] = MAGIC ^ i;
  b[1] = i;
  b[2] = g;
  b[3] = sum;
  gens[i] = g; /* last: until here the block counts as holding generation g - 1 (resumed mid-fill, it finishes) */
}

static char line[512];
static i64 len;
static void put(const char *s) {
  while (*s && len < (i64)sizeof line - 1) line[len++] = *s++;
}
static void putn(const char *key, u64 v) {
  char d[24];
  int n = 0;
  put(key);
  do d[n++] = (char)('0' + v % 10); while ((v /= 10) && n < 23);
  while (n && len < (i64)sizeof line - 1) line[len++] = d[--n];
}

static void report(const char *path, const char *tmp, u64 mib, u64 bytes, u64 checked) {
  len = 0;
  putn("pid=", (u64)sys(SYS_getpid, 0, 0, 0, 0, 0, 0));
  putn(" buf=", (u64)buf);
  putn(" mib=", mib);
  putn(" block=", words * 8 / 1024);
  putn(" passes=", passes);
  putn(" rewrites=", rewrites);
  putn(" bytes=", bytes);
  putn(" ns=", now_ns());
  putn(" bad=", bad);
  if (bad) {
    putn(" first=", first_i);
    putn(":", first_g);
    putn(":", first_w);
  }
  putn(" checked=", checked);
  put("\n");
  i64 fd = sys(SYS_open, (i64)tmp, 01 | 0100 | 01000 /* O_WRONLY|O_CREAT|O_TRUNC */, 0644, 0, 0, 0);
  if (fd < 0) return;
  sys(SYS_write, fd, (i64)line, len, 0, 0, 0);
  sys(SYS_close, fd, 0, 0, 0, 0, 0);
  sys(SYS_rename, (i64)tmp, (i64)path, 0, 0, 0, 0);
}

static void run(u64 mib, u64 block_kib) {
  words = block_kib * 1024 / 8;
  nblocks = mib * 1024 / block_kib;
  if (!nblocks || words <= HDR) die("memcheck: bad sizes\n");
  i64 p = sys(SYS_mmap, 0, (i64)(nblocks * words * 8 + nblocks * 8), 3 /* RW */, 0x22 /* PRIVATE|ANON */, -1, 0);
  if (p < 0 && p > -4096) die("memcheck: mmap failed\n");
  buf = (u64 *)p;
  gens = buf + nblocks * words;
  for (u64 i = 0; i < nblocks; i++) fill(i, 1);
  /* A scattered order (a stride coprime with the block count): consecutive rewrites land far apart. */
  u64 stride = nblocks / 3 + 1;
  while (1) {
    u64 a = stride, b = nblocks;
    while (b) { u64 t = a % b; a = b; b = t; }
    if (a == 1) break;
    stride++;
  }
  u64 at = 0, bytes = 0, next_status = 0, step = 0;
  for (;;) {
    check(at);
    fill(at, gens[at] + 1);
    rewrites++;
    bytes += words * 8;
    at = (at + stride) % nblocks;
    if (at == 0) passes++;
    if (++step % 16) continue;
    if (sys(SYS_access, (i64)"/tmp/mc.req", 0, 0, 0, 0, 0) == 0) {
      u64 ok = 0;
      for (u64 i = 0; i < nblocks; i++) ok += (u64)check(i);
      report("/tmp/mc.out", "/tmp/mc.out.tmp", mib, bytes, ok);
      sys(SYS_unlink, (i64)"/tmp/mc.req", 0, 0, 0, 0, 0);
    }
    u64 t = now_ns();
    if (t >= next_status) {
      report("/tmp/mc.status", "/tmp/mc.status.tmp", mib, bytes, 0);
      next_status = t + 250000000UL;
    }
  }
}

void cmain(i64 *sp) {
  i64 argc = sp[0];
  char **argv = (char **)(sp + 1);
  u64 mib = argc > 1 ? parse(argv[1]) : 0;
  u64 block_kib = argc > 2 ? parse(argv[2]) : 64;
  if (!mib || !block_kib || (block_kib & (block_kib - 1))) die("usage: memcheck MIB [BLOCK_KIB (a power of 2)]\n");
  run(mib, block_kib);
}

__asm__(".text\n.global _start\n_start:\n xor %rbp, %rbp\n mov %rsp, %rdi\n and $-16, %rsp\n call cmain\n hlt\n");
