// Host paths in VM specs: a disk image, a kernel, an initrd named by path. QEMU, running as the server's user, reads
// such a file for the guest, so a path given freely would hand a guest the server's database, a saved API token or
// another user's disk. Hence: only admins name paths, only regular files inside the folders the administrator
// configured (--images-dir), and a disk's format comes from its name, never from probing its contents (a raw disk
// whose first bytes look like a qcow2 header would otherwise open files of its choosing as backing files).
// Every refusal is the same error (errors.ts pathRefused): it tells nothing of whether a path exists.
import { realpathSync, statSync } from 'node:fs';
import { extname, sep } from 'node:path';
import { pathRefused } from '../errors.ts';

/** The file's real path, if `allowed` (the caller is an admin) and it is a regular file inside one of `dirs`. */
export function hostFile(path: string, dirs: string[], allowed: boolean): string {
  if (!allowed || !path.startsWith('/')) throw pathRefused();
  let real: string;
  try {
    real = realpathSync(path);
    if (!statSync(real).isFile()) throw pathRefused();
  } catch {
    throw pathRefused();
  }
  const inside = dirs.some((d) => {
    try {
      const root = realpathSync(d);
      return real.startsWith(root.endsWith(sep) ? root : root + sep);
    } catch {
      return false;
    }
  });
  if (!inside) throw pathRefused();
  return real;
}

const FORMATS: Record<string, 'qcow2' | 'raw'> = { '.qcow2': 'qcow2', '.raw': 'raw', '.img': 'raw', '.iso': 'raw' };

/** The disk format a file's name declares (.qcow2; .raw, .img, .iso are raw). */
export function diskFormatOf(path: string): 'qcow2' | 'raw' {
  const f = FORMATS[extname(path).toLowerCase()];
  if (!f) throw pathRefused();
  return f;
}
