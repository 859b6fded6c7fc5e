// Chooses KVM or TCG. `auto` uses KVM only when /dev/kvm opens AND a guest really runs under it with the CPU
// model Oriel gives KVM guests. Seen on this kind of machine: /dev/kvm exists, yet `-cpu host` makes QEMU abort
// ("failed to set MSR"); on others guests hang in firmware; and on others (nested KVM) SeaBIOS runs but Linux hangs
// right after detecting the TSC, whatever the CPU model. So the probe boots a Linux kernel (the tiny image's, when
// it is built) with the same machine and CPU as a real VM and waits for it to start /init on the serial port;
// without a kernel it can only boot SeaBIOS and wait for its boot menu on the debug console (port 0x402).
// Anything else within the time limit means TCG.
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { release, tmpdir } from 'node:os';
import type { Accel } from '../config.ts';

const PROBE_TIMEOUT_MS = 5000;
/** A kernel under working KVM reaches /init in about a second; firmware on a slow nested host can take 10 s. */
const KERNEL_PROBE_TIMEOUT_MS = 25_000;
export const KVM_CPU = 'host';

/** A Linux kernel and initrd the probe can boot. */
export interface ProbeKernel { kernel: string; initrd: string }

/** The verdict of each probe, once per process, by what it depends on (probeKey). */
const cached = new Map<string, Promise<'kvm' | 'tcg'>>();

/**
 * What a probe's verdict depends on: the QEMU binary, the host kernel, the probe kernel and initrd (each by path,
 * size and time) and the CPU model. A verdict kept under the same key (in `verdictFile`, written after each probe)
 * is reused across server starts: on a host where KVM hangs, the kernel probe waits out its whole time limit.
 */
export function probeKey(qemuBinary: string, kernel?: ProbeKernel): string {
  const id = (f: string) => {
    try {
      const st = statSync(f);
      return `${f}:${st.size}:${st.mtimeMs}`;
    } catch {
      return `${f}:-`;
    }
  };
  let kvm = '-';
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    kvm = 'rw';
  } catch { /* no usable /dev/kvm: the verdict is tcg anyway */ }
  // A bare name ("qemu-system-x86_64") is the file PATH finds, so that an upgraded QEMU makes a new key.
  const onPath = (name: string) => name.includes('/') ? name
    : (process.env.PATH ?? '').split(':').filter(Boolean).map((d) => join(d, name)).find((f) => existsSync(f)) ?? name;
  return [id(onPath(qemuBinary)), release(), kvm, KVM_CPU,
    ...(kernel ? [id(kernel.kernel), id(kernel.initrd)] : ['firmware'])].join('|');
}

/** How long a kept verdict is believed: a host whose KVM comes back (or breaks) is probed again within a week. */
const VERDICT_DAYS = 7;

function keptVerdict(file: string, key: string): 'kvm' | 'tcg' | undefined {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as { key?: string; accel?: string; at?: string };
    const age = Date.now() - Date.parse(v.at ?? '');
    if (!(age >= 0 && age < VERDICT_DAYS * 86_400_000)) return undefined;
    return v.key === key && (v.accel === 'kvm' || v.accel === 'tcg') ? v.accel : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `auto` → KVM or TCG by a probe (see the top of this file), once per process and, with `verdictFile`, once per
 * host set-up: a kernel probe's costly verdicts (KVM works; the kernel hung until the time limit) are kept there
 * for a week and reused while nothing they depend on changes. A quick failure (QEMU did not start, /dev/kvm
 * refused) is not kept: it may pass next time, and probing again costs little.
 */
export function resolveAccel(
  wanted: Accel,
  qemuBinary: string,
  kernel?: ProbeKernel,
  verdictFile?: string,
  probeTimeoutMs?: number,
): Promise<'kvm' | 'tcg'> {
  if (wanted === 'tcg') return Promise.resolve('tcg');
  if (wanted === 'kvm') return Promise.resolve('kvm');
  const key = probeKey(qemuBinary, kernel);
  let verdict = cached.get(key);
  if (!verdict) {
    const kept = verdictFile ? keptVerdict(verdictFile, key) : undefined;
    verdict = kept
      ? Promise.resolve(kept)
      : probeKvmOutcome(qemuBinary, kernel, probeTimeoutMs).then((outcome) => {
        const accel = outcome === 'kvm' ? 'kvm' : 'tcg';
        // Only a kernel's verdict is worth keeping: a firmware probe is quick and the weaker test.
        if (verdictFile && kernel && outcome !== 'failed') {
          const tmp = `${verdictFile}.${process.pid}.tmp`;
          try {
            writeFileSync(tmp, `${JSON.stringify({ key, accel, at: new Date().toISOString() })}\n`);
            renameSync(tmp, verdictFile);
          } catch {
            rmSync(tmp, { force: true }); // a read-only cache: probe again next time
          }
        }
        return accel;
      });
    cached.set(key, verdict);
  }
  return verdict;
}

export async function probeKvm(
  qemuBinary: string,
  kernel?: ProbeKernel,
  timeoutMs?: number,
): Promise<boolean> {
  return (await probeKvmOutcome(qemuBinary, kernel, timeoutMs)) === 'kvm';
}

/** The probe: KVM ran the kernel (or firmware) to its mark, the time limit passed first, or it failed at once. */
async function probeKvmOutcome(
  qemuBinary: string,
  kernel?: ProbeKernel,
  timeoutMs = kernel ? KERNEL_PROBE_TIMEOUT_MS : PROBE_TIMEOUT_MS,
): Promise<'kvm' | 'timeout' | 'failed'> {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return 'failed';
  }
  const dir = mkdtempSync(join(tmpdir(), 'oriel-kvm-'));
  const log = join(dir, 'probe.log');
  const reached = kernel ? /Run \/init as init process/ : /Booting from|No bootable device/;
  const reachedBoot = () => {
    try {
      return reached.test(readFileSync(log, 'latin1'));
    } catch {
      return false;
    }
  };
  const watch = kernel
    ? [
        '-kernel',
        kernel.kernel,
        '-initrd',
        kernel.initrd,
        '-append',
        'console=ttyS0 panic=-1',
        '-m',
        '128',
        '-serial',
        `file:${log}`,
      ]
    : ['-m', '32', '-chardev', `file,id=dbg,path=${log}`, '-device', 'isa-debugcon,iobase=0x402,chardev=dbg'];
  try {
    return await new Promise<'kvm' | 'timeout' | 'failed'>((resolve) => {
      const child = spawn(
        qemuBinary,
        [
          '-accel',
          'kvm',
          '-cpu',
          KVM_CPU,
          '-machine',
          'q35',
          '-nodefaults',
          '-no-user-config',
          '-display',
          'none',
          ...watch,
        ],
        { stdio: 'ignore' },
      );
      let done = false;
      const finish = (outcome: 'kvm' | 'timeout' | 'failed') => {
        if (done) return;
        done = true;
        clearInterval(poll);
        clearTimeout(timer);
        child.kill('SIGKILL');
        resolve(outcome);
      };
      const poll = setInterval(() => reachedBoot() && finish('kvm'), 100);
      const timer = setTimeout(() => finish(reachedBoot() ? 'kvm' : 'timeout'), timeoutMs);
      child.on('error', () => finish('failed'));
      child.on('exit', () => finish(reachedBoot() ? 'kvm' : 'failed'));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
