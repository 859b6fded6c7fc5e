// The memcheck guest program (guest/memcheck.c: rewrites its buffer as fast as it can, every block stamped with a
// generation and a checksum, verified before each rewrite and on request): built once with the host's gcc (static,
// no libc, ~9 KB) into the cache, copied into a running tiny guest through its command shell, started there in the
// background, and asked for its status or a full check.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfig } from '../../src/config.ts';
import type { VmManager } from '../../src/vm/manager.ts';

const SOURCE = new URL('./guest/memcheck.c', import.meta.url);
const FLAGS = [
  '-static', '-nostdlib', '-nostartfiles', '-ffreestanding', '-fno-tree-loop-distribute-patterns', '-O2',
  '-fno-tree-vectorize', '-fno-stack-protector', '-fno-pie', '-no-pie', '-fno-asynchronous-unwind-tables',
  '-Wall', '-Wextra', '-Werror', '-s', '-Wl,--build-id=none',
];

/** The built program's path (built on first use; cached by source and flags). */
export function memcheckBinary(): string {
  const src = readFileSync(SOURCE);
  const key = createHash('sha256').update(src).update(FLAGS.join(' ')).digest('hex').slice(0, 16);
  const dir = join(defaultConfig().cacheDir, 'guest-bin');
  const out = join(dir, `memcheck-${key}`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  execFileSync('gcc', [...FLAGS, '-o', tmp, SOURCE.pathname], { stdio: ['ignore', 'ignore', 'pipe'] });
  renameSync(tmp, out);
  return out;
}

export interface MemcheckStatus {
  pid: number;
  /** The buffer's address in the program (block i at buf + i * blockKiB KiB). */
  buf: bigint;
  mib: number;
  blockKiB: number;
  passes: number;
  rewrites: number;
  /** Bytes rewritten since the program started, at guest time `ns` (CLOCK_MONOTONIC). */
  bytes: number;
  ns: number;
  /** Inconsistencies found so far (before a rewrite or in a full check). */
  bad: number;
  /** The first one: block, the generation it should have held, word. */
  first?: string;
  /** Blocks found consistent by the full check (mc.out only). */
  checked: number;
}

export function parseStatus(line: string): MemcheckStatus {
  const f = Object.fromEntries(line.trim().split(' ').map((kv) => kv.split('=') as [string, string]));
  if (!f.pid || !f.buf || !f.bytes) throw new Error(`memcheck: not a status line: '${line}'`);
  return {
    pid: Number(f.pid), buf: BigInt(f.buf), mib: Number(f.mib), blockKiB: Number(f.block), passes: Number(f.passes),
    rewrites: Number(f.rewrites), bytes: Number(f.bytes), ns: Number(f.ns), bad: Number(f.bad), first: f.first,
    checked: Number(f.checked),
  };
}

/** MiB/s between two status lines of the same run. */
export const rateMiBs = (a: MemcheckStatus, b: MemcheckStatus): number =>
  (b.bytes - a.bytes) / 2 ** 20 / ((b.ns - a.ns) / 1e9);

export class Memcheck {
  constructor(private readonly vms: VmManager, private readonly vm: string) {}

  private async sh(script: string, timeoutMs = 60_000): Promise<string> {
    const r = await this.vms.exec(this.vm, ['sh', '-c', script], timeoutMs);
    if (r.exitCode !== 0) throw new Error(`memcheck: '${script.slice(0, 80)}' failed (${r.exitCode}): ${r.stderr}`);
    return r.stdout;
  }

  /** Copies the program into the guest's /tmp (RAM) and starts it over `mib` MiB; returns its first status. */
  async start(mib: number): Promise<MemcheckStatus> {
    const b64 = readFileSync(memcheckBinary()).toString('base64').replace(/.{76}/g, '$&\n');
    await this.sh(
      `base64 -d >/tmp/memcheck <<'EOF'\n${b64}\nEOF\nchmod 755 /tmp/memcheck; rm -f /tmp/mc.*\n` +
        `/tmp/memcheck ${mib} </dev/null >/tmp/mc.err 2>&1 &\n` +
        'i=0; while [ ! -e /tmp/mc.status ] && [ $i -lt 300 ]; do usleep 50000; i=$((i+1)); done; cat /tmp/mc.status',
    );
    return this.status();
  }

  async status(): Promise<MemcheckStatus> {
    return parseStatus(await this.sh('cat /tmp/mc.status'));
  }

  /** Has the program verify every block at one point of its run: the result (checked = consistent blocks), and the
   * output of `then`, a shell command run in the same request. */
  async fullCheck(then = 'true'): Promise<{ check: MemcheckStatus; then: string }> {
    const out = await this.sh(
      'rm -f /tmp/mc.out; touch /tmp/mc.req; i=0\n' +
        'while [ -e /tmp/mc.req ] && [ $i -lt 600 ]; do usleep 20000; i=$((i+1)); done; cat /tmp/mc.out\n' + then,
    );
    const nl = out.indexOf('\n');
    return { check: parseStatus(out.slice(0, nl)), then: out.slice(nl + 1).trim() };
  }

  /** Flips one byte of block `block`'s payload in the running program's memory (through /proc/PID/mem). */
  async corrupt(s: MemcheckStatus, block: number): Promise<void> {
    const at = s.buf + BigInt(block * s.blockKiB * 1024 + 1000);
    const mem = `/proc/${s.pid}/mem`;
    await this.sh(
      `b=$(dd if=${mem} bs=1 skip=${at} count=1 2>/dev/null | od -An -tu1)\n` +
        `printf "\\\\$(printf %o $(( (b ^ 255) & 255 )))" | dd of=${mem} bs=1 seek=${at} conv=notrunc 2>/dev/null`,
    );
  }
}
