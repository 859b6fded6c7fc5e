// Chooses KVM or TCG. `auto` uses KVM only when /dev/kvm opens AND a guest really runs under it with the CPU
// model Oriel gives KVM guests. Seen on this kind of machine: /dev/kvm exists, yet `-cpu host` makes QEMU abort
// ("failed to set MSR"); on others guests hang in firmware; and on others (nested KVM) SeaBIOS runs but Linux hangs
// right after detecting the TSC, whatever the CPU model. So the probe boots a Linux kernel (the tiny image's, when
// it is built) with the same machine and CPU as a real VM and waits for it to start /init on the serial port;
// without a kernel it can only boot SeaBIOS and wait for its boot menu on the debug console (port 0x402).
// Anything else within the time limit means TCG.
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Accel } from '../config.ts';

const PROBE_TIMEOUT_MS = 5000;
/** A kernel under working KVM reaches /init in about a second; firmware on a slow nested host can take 10 s. */
const KERNEL_PROBE_TIMEOUT_MS = 25_000;
export const KVM_CPU = 'host';

/** A Linux kernel and initrd the probe can boot. */
export interface ProbeKernel { kernel: string; initrd: string }

/** The verdict of each kind of probe, once per process (a kernel's verdict is the one to trust). */
const cached = new Map<'kernel' | 'firmware', Promise<'kvm' | 'tcg'>>();

export function resolveAccel(wanted: Accel, qemuBinary: string, kernel?: ProbeKernel): Promise<'kvm' | 'tcg'> {
  if (wanted === 'tcg') return Promise.resolve('tcg');
  if (wanted === 'kvm') return Promise.resolve('kvm');
  const kind = kernel ? 'kernel' : 'firmware';
  let verdict = cached.get(kind);
  if (!verdict) cached.set(kind, (verdict = probeKvm(qemuBinary, kernel).then((ok) => (ok ? 'kvm' : 'tcg'))));
  return verdict;
}

export async function probeKvm(
  qemuBinary: string,
  kernel?: ProbeKernel,
  timeoutMs = kernel ? KERNEL_PROBE_TIMEOUT_MS : PROBE_TIMEOUT_MS,
): Promise<boolean> {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return false;
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
    return await new Promise<boolean>((resolve) => {
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
      const finish = (ok: boolean) => {
        if (done) return;
        done = true;
        clearInterval(poll);
        clearTimeout(timer);
        child.kill('SIGKILL');
        resolve(ok);
      };
      const poll = setInterval(() => reachedBoot() && finish(true), 100);
      const timer = setTimeout(() => finish(false), timeoutMs);
      child.on('error', () => finish(false));
      child.on('exit', () => finish(reachedBoot()));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
