// Chooses KVM or TCG. `auto` uses KVM only when /dev/kvm opens AND the real firmware runs under it with the
// CPU model Oriel gives KVM guests. Seen on this kind of machine: /dev/kvm exists, yet `-cpu host` makes QEMU
// abort ("failed to set MSR"), and on others guests hang in firmware. So the probe boots SeaBIOS with the same
// machine and CPU as a real VM and waits for it to reach its boot menu on the debug console (port 0x402);
// anything else within the time limit means TCG.
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Accel } from '../config.ts';

const PROBE_TIMEOUT_MS = 5000;
export const KVM_CPU = 'host';

let cached: Promise<'kvm' | 'tcg'> | undefined;

export function resolveAccel(wanted: Accel, qemuBinary: string): Promise<'kvm' | 'tcg'> {
  if (wanted === 'tcg') return Promise.resolve('tcg');
  if (wanted === 'kvm') return Promise.resolve('kvm');
  cached ??= probeKvm(qemuBinary).then((ok) => (ok ? 'kvm' : 'tcg'));
  return cached;
}

export async function probeKvm(qemuBinary: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return false;
  }
  const dir = mkdtempSync(join(tmpdir(), 'oriel-kvm-'));
  const log = join(dir, 'debugcon.log');
  const reachedBoot = () => {
    try {
      return /Booting from|No bootable device/.test(readFileSync(log, 'latin1'));
    } catch {
      return false;
    }
  };
  try {
    return await new Promise<boolean>((resolve) => {
      const child = spawn(qemuBinary, [
        '-accel', 'kvm', '-cpu', KVM_CPU, '-machine', 'q35', '-m', '32', '-nodefaults', '-no-user-config',
        '-display', 'none', '-chardev', `file,id=dbg,path=${log}`, '-device', 'isa-debugcon,iobase=0x402,chardev=dbg',
      ], { stdio: 'ignore' });
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
