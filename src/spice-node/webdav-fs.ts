// A folder of the Node host as the WebDAV share's file system (`oriel console share TARGET DIR`). Every operation
// resolves the real path (symbolic links followed) of what it touches, or of its parent for a name being created,
// and refuses it when that leaves the shared folder's real path. A file being written goes to a hidden temporary
// file beside it, renamed over the name when complete: a broken upload leaves the old file as it was.
import { randomBytes } from 'node:crypto';
import { cp, lstat, mkdir, open, readdir, realpath, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { DavFsError, type DavEntry, type DavFs, type DavPath, type DavWriter } from '../spice/index.ts';

const TEMP_PREFIX = '.oriel-upload-';

function fsError(e: unknown): Error {
  if (e instanceof DavFsError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const msg = (e as Error).message;
  switch (code) {
    case 'ENOENT': return new DavFsError('not-found', 'not found');
    case 'EEXIST': case 'ENOTEMPTY': return new DavFsError('exists', 'already exists');
    case 'EACCES': case 'EPERM': case 'EROFS': return new DavFsError('forbidden', 'permission denied');
    case 'ENOTDIR': case 'EISDIR': return new DavFsError('not-dir', 'not a folder');
    case 'ENOSPC': case 'EDQUOT': return new DavFsError('no-space', 'no space left');
    default: return new DavFsError('io', msg);
  }
}

export async function nodeDavFs(dir: string, opts: { readOnly?: boolean } = {}): Promise<DavFs> {
  const root = await realpath(dir);
  if (!(await stat(root)).isDirectory()) throw new Error(`${dir}: not a folder`);
  const inside = (p: string) => p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);
  const refuse = () => new DavFsError('forbidden', 'outside the shared folder');

  /** The real path of an existing entry (followed through links), checked to be inside. */
  const real = async (path: DavPath): Promise<string> => {
    const r = await realpath(join(root, ...path));
    if (!inside(r)) throw refuse();
    return r;
  };
  /** The entry itself (not followed): its parent's real path, checked, and its name. */
  const here = async (path: DavPath): Promise<string> => {
    if (!path.length) throw refuse();
    return join(await real(path.slice(0, -1)), path[path.length - 1]!);
  };
  /** A name about to be created: nothing may be there, not even a dangling link. */
  const fresh = async (path: DavPath): Promise<string> => {
    const p = await here(path);
    const there = await lstat(p).then(() => true, (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return false;
      throw e;
    });
    if (there) throw new DavFsError('exists', 'already exists');
    return p;
  };
  const entry = async (name: string, p: string): Promise<DavEntry> => {
    const s = await stat(p);
    return { name, type: s.isDirectory() ? 'dir' : 'file', size: s.isDirectory() ? 0 : s.size, mtimeMs: s.mtimeMs };
  };
  const wrap = <A extends unknown[], R>(f: (...a: A) => Promise<R>) => async (...a: A): Promise<R> => {
    try {
      return await f(...a);
    } catch (e) {
      throw fsError(e);
    }
  };

  return {
    readOnly: !!opts.readOnly,
    stat: wrap(async (path) => {
      try {
        return await entry(path[path.length - 1] ?? '', await real(path));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
        throw e;
      }
    }),
    list: wrap(async (path) => {
      const d = await real(path);
      const out: DavEntry[] = [];
      for (const name of await readdir(d)) {
        if (name.startsWith(TEMP_PREFIX)) continue;
        try {
          const r = await realpath(join(d, name));
          if (inside(r)) out.push(await entry(name, r));
        } catch {
          // a dangling link or a file gone meanwhile: not listed
        }
      }
      return out;
    }),
    read: wrap(async (path, offset, length) => {
      const fh = await open(await real(path), 'r');
      try {
        const buf = new Uint8Array(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return got === length ? buf : buf.subarray(0, got);
      } finally {
        await fh.close();
      }
    }),
    createWriter: wrap(async (path): Promise<DavWriter> => {
      const target = await here(path);
      // The name may be an existing file (replaced) or a link to one inside: write where it really is.
      const existing = await realpath(target).catch(() => undefined);
      if (existing && !inside(existing)) throw refuse();
      if (!existing && (await lstat(target).then(() => true, () => false))) throw refuse(); // dangling link
      const dest = existing ?? target;
      const tmp = join(dest, '..', `${TEMP_PREFIX}${randomBytes(6).toString('hex')}`);
      const fh: FileHandle = await open(tmp, 'wx', 0o644);
      let closed = false;
      const finish = async () => {
        if (!closed) await fh.close();
        closed = true;
      };
      return {
        write: wrap(async (b: Uint8Array) => {
          for (let at = 0; at < b.length; ) at += (await fh.write(b, at, b.length - at)).bytesWritten;
        }),
        close: wrap(async () => {
          await finish();
          await rename(tmp, dest);
        }),
        abort: async () => {
          await finish().catch(() => undefined);
          await rm(tmp, { force: true });
        },
      };
    }),
    mkdir: wrap(async (path) => {
      await mkdir(await fresh(path));
    }),
    remove: wrap(async (path) => {
      await rm(await here(path), { recursive: true });
    }),
    move: wrap(async (from, to) => {
      await rename(await here(from), await fresh(to));
    }),
    copy: wrap(async (from, to) => {
      await cp(await real(from), await fresh(to), { recursive: true, errorOnExist: true, force: false });
    }),
  };
}
