// qemu-img wrappers: inspect a base image, create the per-VM copy-on-write overlay on it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class DiskImageError extends Error {}

export interface DiskInfo {
  format: string;
  virtualSize: number;
  backingFile?: string;
  /** A qcow2 image's external data file, if it has one. */
  dataFile?: string;
}

/** The image's metadata, read as `format` (pinned: the contents are never probed to guess it). */
export async function diskInfo(qemuImg: string, path: string, format: string): Promise<DiskInfo> {
  try {
    const { stdout } = await run(qemuImg, ['info', '--output=json', '-U', '-f', format, path], { timeout: 30_000 });
    const j = JSON.parse(stdout) as {
      format: string; 'virtual-size': number; 'backing-filename'?: string;
      'format-specific'?: { data?: { 'data-file'?: string } };
    };
    return {
      format: j.format, virtualSize: j['virtual-size'], backingFile: j['backing-filename'],
      dataFile: j['format-specific']?.data?.['data-file'],
    };
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
    throw new DiskImageError(`${path} is not a usable disk image: ${msg.replace(/^qemu-img: /, '')}`);
  }
}

/** Checks the image's metadata for corruption (qcow2 only; raw images have none to check). */
export async function checkDisk(qemuImg: string, path: string, format: string): Promise<void> {
  if (format !== 'qcow2') return;
  try {
    await run(qemuImg, ['check', '-U', '-f', format, path], { timeout: 120_000 });
  } catch (e) {
    const out = ((e as { stdout?: string }).stdout ?? '') + ((e as { stderr?: string }).stderr ?? '');
    throw new DiskImageError(`${path} is a corrupt qcow2 image: ${out.trim().split('\n').slice(0, 3).join('; ')}`);
  }
}

export async function createOverlay(qemuImg: string, base: string, baseFormat: string, overlay: string): Promise<void> {
  try {
    await run(qemuImg, ['create', '-q', '-f', 'qcow2', '-F', baseFormat, '-b', base, overlay], { timeout: 30_000 });
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
    throw new DiskImageError(`cannot create the VM's overlay on ${base}: ${msg}`);
  }
}

/** An empty qcow2 disk of `bytes` (a VM installed from a CD-ROM). */
export async function createBlankDisk(qemuImg: string, file: string, bytes: number): Promise<void> {
  try {
    await run(qemuImg, ['create', '-q', '-f', 'qcow2', file, String(bytes)], { timeout: 30_000 });
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
    throw new DiskImageError(`cannot create the VM's disk: ${msg}`);
  }
}

/** Grows a qcow2 disk to `bytes` (never shrinks: that would cut off what the guest wrote at the end). */
export async function growDisk(qemuImg: string, file: string, bytes: number): Promise<void> {
  try {
    await run(qemuImg, ['resize', '-q', '-f', 'qcow2', file, String(bytes)], { timeout: 60_000 });
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
    throw new DiskImageError(`cannot resize the disk: ${msg}`);
  }
}
