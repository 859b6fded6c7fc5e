// A writer of the cpio "newc" format, the one the kernel unpacks as an initramfs
// (Documentation/driver-api/early-userspace/buffer-format.rst). Only what an initramfs needs: regular files,
// directories and symlinks; device nodes are left out because the guest mounts devtmpfs.
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zc } from 'node:zlib';

export type CpioEntry =
  | { type: 'file'; path: string; data: Buffer; mode?: number }
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'symlink'; path: string; target: string };

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const TRAILER = 'TRAILER!!!';

function header(f: { ino: number; mode: number; nlink: number; size: number; name: string }): Buffer {
  const fields = [
    f.ino, f.mode, 0 /* uid */, 0 /* gid */, f.nlink, 0 /* mtime: fixed, so archives are reproducible */, f.size,
    0, 0 /* dev major/minor */, 0, 0 /* rdev major/minor */, Buffer.byteLength(f.name) + 1, 0 /* check */,
  ];
  const text = '070701' + fields.map((n) => n.toString(16).padStart(8, '0')).join('') + f.name + '\0';
  return pad(Buffer.from(text));
}

// Header+name and data are each padded to a multiple of 4 bytes.
function pad(b: Buffer): Buffer {
  const extra = (4 - (b.length % 4)) % 4;
  return extra ? Buffer.concat([b, Buffer.alloc(extra)]) : b;
}

function normalize(path: string): string {
  const p = path.replace(/^\/+/, '').replace(/\/+$/, '');
  if (!p || p.split('/').some((s) => s === '' || s === '.' || s === '..')) throw new Error(`cpio: bad path '${path}'`);
  return p;
}

/** The archive as a sequence of chunks, entries in the order given (the kernel needs a folder before its contents). */
export function* cpioChunks(entries: Iterable<CpioEntry>): Generator<Buffer> {
  let ino = 1;
  for (const e of entries) {
    const name = normalize(e.path);
    if (e.type === 'dir') {
      yield header({ ino: ino++, mode: S_IFDIR | (e.mode ?? 0o755), nlink: 2, size: 0, name });
    } else {
      const data = e.type === 'file' ? e.data : Buffer.from(e.target);
      const mode = e.type === 'file' ? S_IFREG | (e.mode ?? 0o644) : S_IFLNK | 0o777;
      yield header({ ino: ino++, mode, nlink: 1, size: data.length, name });
      yield pad(data);
    }
  }
  yield header({ ino: 0, mode: 0, nlink: 1, size: 0, name: TRAILER });
}

export function cpioArchive(entries: Iterable<CpioEntry>): Buffer {
  return Buffer.concat([...cpioChunks(entries)]);
}

/** Writes the gzip-compressed archive (the kernel's initramfs decompressor handles gzip: CONFIG_RD_GZIP). */
export async function writeCpioGz(entries: Iterable<CpioEntry>, file: string, signal?: AbortSignal): Promise<void> {
  await pipeline(
    Readable.from(cpioChunks(entries)),
    createGzip({ level: zc.Z_BEST_COMPRESSION }),
    createWriteStream(file),
    { signal },
  );
}
