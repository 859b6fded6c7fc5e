// What an uploaded file is: an ISO 9660 image (CD-ROM media) by its signature, else a disk image whose format
// qemu-img reads from its contents. Probing is done once, on the finished upload; the answer is pinned in the image's
// row (QEMU is always told the format, never left to guess). A qcow2 naming a backing or data file is refused: QEMU
// would open host files of the uploader's choosing.
import { execFile } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import { promisify } from 'node:util';
import { OrielError } from '../../errors.ts';
import { checkDisk } from '../disk.ts';

const run = promisify(execFile);

/** ISO 9660: the first volume descriptor at sector 16 (2048-byte sectors) reads "CD001" after its type byte. */
const ISO_MAGIC_OFFSET = 16 * 2048 + 1;
const ISO_MAGIC = 'CD001';

export interface Detected {
  kind: 'iso' | 'disk';
  format: 'raw' | 'qcow2';
  /** A disk's virtual size (what the guest sees). */
  virtualSize: number | null;
}

const refused = (m: string) => new OrielError(422, m, 'bad_image');

export function isIso(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(ISO_MAGIC.length);
    return readSync(fd, b, 0, b.length, ISO_MAGIC_OFFSET) === b.length && b.toString('latin1') === ISO_MAGIC;
  } finally {
    closeSync(fd);
  }
}

export async function detectImage(qemuImg: string, file: string): Promise<Detected> {
  if (isIso(file)) return { kind: 'iso', format: 'raw', virtualSize: null };
  let info: { format?: string; 'virtual-size'?: number; 'backing-filename'?: string;
    'format-specific'?: { data?: { 'data-file'?: string } } };
  try {
    const { stdout } = await run(qemuImg, ['info', '--output=json', file], { timeout: 60_000 });
    info = JSON.parse(stdout) as typeof info;
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
    throw refused(`the upload is neither an ISO nor a disk image qemu-img can read: ${msg.replace(/^qemu-img: /, '')}`);
  }
  if (info.format !== 'raw' && info.format !== 'qcow2')
    throw refused(`disk images must be qcow2 or raw (or an ISO), not ${info.format ?? 'unknown'}: convert it with qemu-img convert`);
  if (info['backing-filename'] || info['format-specific']?.data?.['data-file'])
    throw refused('the qcow2 image refers to another file (a backing or data file): upload a standalone image');
  await checkDisk(qemuImg, file, info.format).catch((e: Error) => { throw refused(e.message); });
  return { kind: 'disk', format: info.format, virtualSize: info['virtual-size'] ?? null };
}
