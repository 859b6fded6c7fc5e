// "Share a folder…" in the web console: a folder of this computer served to the guest over the SPICE WebDAV channel
// (the desktop image mounts it at ~/Shared). showDirectoryPicker gives a FileSystemDirectoryHandle, read-write when
// the person grants it; browsers without it fall back to <input type=file webkitdirectory>, whose files are shared
// read-only (a snapshot of the folder's files, no writes possible). The same channel carries fast file drops.
import {
  ChannelType, DavFsError, WebdavShare, type DavEntry, type DavFs, type DavPath, type DavWriter, type PortChannel,
  type SpiceSession,
} from '../spice/index.ts';

/** The async iteration TypeScript's DOM lib leaves out of FileSystemDirectoryHandle. */
type Dir = FileSystemDirectoryHandle & { entries(): AsyncIterable<[string, FileSystemHandle]> };
interface PickerWindow {
  showDirectoryPicker?: (o: { mode: 'read' | 'readwrite' }) => Promise<Dir>;
}

function domError(e: unknown): Error {
  if (e instanceof DavFsError) return e;
  const name = (e as DOMException)?.name;
  if (name === 'NotFoundError') return new DavFsError('not-found', 'not found');
  if (name === 'TypeMismatchError') return new DavFsError('not-dir', 'not a folder');
  if (name === 'NotAllowedError' || name === 'SecurityError') return new DavFsError('forbidden', 'permission denied');
  if (name === 'QuotaExceededError') return new DavFsError('no-space', 'no space left');
  if (name === 'InvalidModificationError') return new DavFsError('exists', 'already exists');
  return new DavFsError('io', (e as Error)?.message ?? String(e));
}

/** A FileSystemDirectoryHandle as the share's file system (names only go down: the API has no "..", no links). */
export function directoryHandleFs(root: Dir, readOnly: boolean): DavFs {
  const dirAt = async (path: DavPath): Promise<Dir> => {
    let d = root;
    for (const n of path) d = (await d.getDirectoryHandle(n)) as Dir;
    return d;
  };
  const parent = (path: DavPath) => dirAt(path.slice(0, -1));
  const leaf = (path: DavPath) => path[path.length - 1]!;
  const entryOf = async (name: string, h: FileSystemHandle): Promise<DavEntry> => {
    if (h.kind === 'directory') return { name, type: 'dir', size: 0, mtimeMs: 0 };
    const f = await (h as FileSystemFileHandle).getFile();
    return { name, type: 'file', size: f.size, mtimeMs: f.lastModified };
  };
  const handleAt = async (path: DavPath): Promise<FileSystemHandle> => {
    if (!path.length) return root;
    const p = await parent(path);
    return p.getFileHandle(leaf(path)).catch(() => p.getDirectoryHandle(leaf(path)));
  };
  const wrap = <A extends unknown[], R>(f: (...a: A) => Promise<R>) => async (...a: A): Promise<R> => {
    try {
      return await f(...a);
    } catch (e) {
      throw domError(e);
    }
  };
  const copyInto = async (from: FileSystemHandle, dest: Dir, name: string): Promise<void> => {
    if (from.kind === 'file') {
      const w = await (await dest.getFileHandle(name, { create: true })).createWritable();
      await (await (from as FileSystemFileHandle).getFile()).stream().pipeTo(w);
      return;
    }
    const d = (await dest.getDirectoryHandle(name, { create: true })) as Dir;
    for await (const [n, h] of (from as Dir).entries()) await copyInto(h, d, n);
  };
  return {
    readOnly,
    stat: async (path) => {
      try {
        return await entryOf(path.length ? leaf(path) : '', await handleAt(path));
      } catch {
        return undefined;
      }
    },
    list: wrap(async (path) => {
      const out: DavEntry[] = [];
      for await (const [n, h] of (await dirAt(path)).entries()) out.push(await entryOf(n, h));
      return out;
    }),
    read: wrap(async (path, offset, length) => {
      const f = await (await (await parent(path)).getFileHandle(leaf(path))).getFile();
      return new Uint8Array(await f.slice(offset, offset + length).arrayBuffer());
    }),
    createWriter: wrap(async (path): Promise<DavWriter> => {
      // createWritable writes to a swap file the browser moves over the file at close(): the old one stays till then.
      const w = await (await (await parent(path)).getFileHandle(leaf(path), { create: true })).createWritable();
      return {
        write: wrap(async (b: Uint8Array) => w.write(b as Uint8Array<ArrayBuffer>)),
        close: wrap(async () => w.close()),
        abort: async () => w.abort().catch(() => undefined),
      };
    }),
    mkdir: wrap(async (path) => {
      await (await parent(path)).getDirectoryHandle(leaf(path), { create: true });
    }),
    remove: wrap(async (path) => (await parent(path)).removeEntry(leaf(path), { recursive: true })),
    move: wrap(async (from, to) => {
      await copyInto(await handleAt(from), await parent(to), leaf(to));
      await (await parent(from)).removeEntry(leaf(from), { recursive: true });
    }),
    copy: wrap(async (from, to) => copyInto(await handleAt(from), await parent(to), leaf(to))),
  };
}

/** Files from <input webkitdirectory> (webkitRelativePath "Folder/a/b.txt") as a read-only share. */
export function pickedFilesFs(files: File[]): DavFs {
  const root: Map<string, unknown> = new Map();
  for (const f of files) {
    const parts = f.webkitRelativePath.split('/').slice(1);
    let d = root;
    for (const n of parts.slice(0, -1)) {
      if (!(d.get(n) instanceof Map)) d.set(n, new Map());
      d = d.get(n) as Map<string, unknown>;
    }
    if (parts.length) d.set(parts[parts.length - 1]!, f);
  }
  const at = (path: DavPath): unknown => {
    let x: unknown = root;
    for (const n of path) x = x instanceof Map ? x.get(n) : undefined;
    return x;
  };
  const entry = (name: string, x: unknown): DavEntry =>
    x instanceof File
      ? { name, type: 'file', size: x.size, mtimeMs: x.lastModified }
      : { name, type: 'dir', size: 0, mtimeMs: 0 };
  const ro = async (): Promise<never> => {
    throw new DavFsError('forbidden', 'read-only');
  };
  return {
    readOnly: true,
    stat: async (p) => {
      const x = at(p);
      return x === undefined ? undefined : entry(p[p.length - 1] ?? '', x);
    },
    list: async (p) => {
      const x = at(p);
      if (!(x instanceof Map)) throw new DavFsError('not-dir', 'not a folder');
      return [...x].map(([n, v]) => entry(n, v));
    },
    read: async (p, offset, length) => {
      const x = at(p);
      if (!(x instanceof File)) throw new DavFsError('not-found', 'not found');
      return new Uint8Array(await x.slice(offset, offset + length).arrayBuffer());
    },
    createWriter: ro, mkdir: ro, remove: ro, move: ro, copy: ro,
  };
}

/** The console's WebDAV share: follows the session, keeps the chosen folder across reconnects. */
export class ConsoleShare {
  share: WebdavShare | undefined;
  /** What is shared, for the toolbar. */
  folder: { name: string; readOnly: boolean } | undefined;
  private _fs: DavFs | undefined;

  constructor(private readonly _onChange: () => void) {}

  attach(session: SpiceSession): void {
    this.share?.dispose();
    this.share = undefined;
    void session.whenChannel<PortChannel>(ChannelType.WEBDAV).then((port) => {
      this.share = new WebdavShare(port, this._fs);
      port.onClose(() => { if (this.share?.port === port) this.share = undefined; });
      this._onChange();
    });
  }

  /** Asks for a folder: read-write through showDirectoryPicker if there is one, else the `fallback` input's files. */
  async pick(fallback: () => Promise<File[] | undefined>): Promise<void> {
    const w = window as unknown as PickerWindow;
    if (w.showDirectoryPicker) {
      let d: Dir;
      try {
        d = await w.showDirectoryPicker({ mode: 'readwrite' });
      } catch (e) {
        if ((e as DOMException).name === 'AbortError') return;
        d = await w.showDirectoryPicker({ mode: 'read' });
      }
      const granted = (await (d as Dir & { queryPermission(o: object): Promise<string> })
        .queryPermission({ mode: 'readwrite' })) === 'granted';
      this._set(directoryHandleFs(d, !granted), { name: d.name, readOnly: !granted });
      return;
    }
    const files = await fallback();
    if (!files?.length) return;
    this._set(pickedFilesFs(files), { name: files[0]!.webkitRelativePath.split('/')[0] ?? 'folder', readOnly: true });
  }

  stop(): void {
    this._set(undefined, undefined);
  }

  private _set(fs: DavFs | undefined, folder: ConsoleShare['folder']): void {
    this._fs = fs;
    this.folder = folder;
    this.share?.setFolder(fs);
    this._onChange();
  }
}
