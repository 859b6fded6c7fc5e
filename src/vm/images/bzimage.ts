// The uncompressed kernel (vmlinux) inside a bzImage. Booting it directly halves the tiny guest's boot under
// TCG: Debian's bzImage carries an xz payload (CONFIG_KERNEL_XZ) whose decompression alone takes ~3 s of emulated
// CPU, while QEMU's -kernel boots an ELF vmlinux through the PVH entry point with no decompressor
// (the kernel has CONFIG_PVH=y; QEMU finds the entry in the ELF's XEN_ELFNOTE_PHYS32_ENTRY note).
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

/** The compressed payload of a bzImage (Documentation/arch/x86/boot.rst: payload_offset/_length, protocol 2.08+). */
export function bzImagePayload(image: Buffer): Buffer {
  if (image.toString('latin1', 0x202, 0x206) !== 'HdrS' || image.readUInt16LE(0x206) < 0x208)
    throw new Error('not a bzImage with boot protocol 2.08 or later');
  const setupSects = image[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + image.readUInt32LE(0x248);
  return image.subarray(start, start + image.readUInt32LE(0x24c));
}

/** Writes the vmlinux ELF of an xz-compressed bzImage to outFile, with the host's xz (xz-utils). */
export async function extractVmlinux(bzImageFile: string, outFile: string, signal?: AbortSignal): Promise<void> {
  const payload = bzImagePayload(readFileSync(bzImageFile));
  if (!payload.subarray(0, 6).equals(XZ_MAGIC))
    throw new Error(`${bzImageFile}: the kernel payload is not xz-compressed`);
  // --single-stream: the kernel build appends the uncompressed size after the xz stream.
  const xz = spawn('xz', ['-dc', '--single-stream'], { stdio: ['pipe', 'pipe', 'pipe'], signal });
  let stderr = '';
  xz.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve, reject) => {
    xz.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'ENOENT'
          ? new Error("'xz' is not installed: the tiny image builder needs it (Debian package xz-utils)")
          : e,
      ),
    );
    xz.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`xz failed to decompress the kernel of ${bzImageFile} (exit ${code}): ${stderr.trim()}`)),
    );
  });
  xz.stdin.on('error', () => {}); // a failed xz closes its stdin early; the exit status above reports it
  xz.stdin.end(payload);
  await Promise.all([pipeline(xz.stdout, createWriteStream(outFile)), exited]);
}
