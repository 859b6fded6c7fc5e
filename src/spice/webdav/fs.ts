// The file system a WebDAV share serves, whatever holds it: a Node folder (src/spice-node/webdav-fs.ts), a browser
// FileSystemDirectoryHandle or a list of picked files (src/spice-web/). Paths are arrays of names below the shared
// folder's root ([] is the root), already checked by paths.ts: no name is empty, ".", ".." or holds "/", "\" or NUL.
// A backend must still refuse what would leave its root in its own terms (symbolic links, for a Node folder).

export interface DavEntry {
  name: string;
  type: 'file' | 'dir';
  size: number;
  /** Last modification, ms since the epoch. */
  mtimeMs: number;
}

/** Receives a file's bytes in order; the file appears (or replaces the old one) only at close(). */
export interface DavWriter {
  write(b: Uint8Array): Promise<void>;
  close(): Promise<void>;
  /** Drops what was written; the old file, if any, stays. */
  abort(): Promise<void>;
}

export type DavPath = readonly string[];

export interface DavFs {
  /** Writes are refused (403) before the backend is asked. */
  readonly readOnly: boolean;
  /** undefined when nothing is there. */
  stat(path: DavPath): Promise<DavEntry | undefined>;
  list(path: DavPath): Promise<DavEntry[]>;
  /** Up to `length` bytes at `offset`; fewer only at the end of the file. */
  read(path: DavPath, offset: number, length: number): Promise<Uint8Array>;
  /** The parent folder exists (the server checked). */
  createWriter(path: DavPath): Promise<DavWriter>;
  mkdir(path: DavPath): Promise<void>;
  /** Removes a file or a whole folder. */
  remove(path: DavPath): Promise<void>;
  /** `to` does not exist (the server removed it first when overwriting). */
  move(from: DavPath, to: DavPath): Promise<void>;
  /** A file or a whole folder; `to` does not exist. */
  copy(from: DavPath, to: DavPath): Promise<void>;
}

export type DavFsErrorCode = 'not-found' | 'exists' | 'forbidden' | 'not-dir' | 'no-space' | 'io';

/** What a backend throws for a failure the server answers with its HTTP status. */
export class DavFsError extends Error {
  override readonly name = 'DavFsError';
  constructor(readonly code: DavFsErrorCode, message: string) {
    super(message);
  }
}

export const FS_ERROR_STATUS: Record<DavFsErrorCode, number> = {
  'not-found': 404, exists: 405, forbidden: 403, 'not-dir': 409, 'no-space': 507, io: 500,
};

/** A share with nothing in it (fast file drops without a shared folder): an empty read-only root. */
export const EMPTY_FS: DavFs = {
  readOnly: true,
  stat: async (p) => (p.length ? undefined : { name: '', type: 'dir', size: 0, mtimeMs: 0 }),
  list: async () => [],
  read: async () => {
    throw new DavFsError('not-found', 'no such file');
  },
  createWriter: readOnlyFs,
  mkdir: readOnlyFs,
  remove: readOnlyFs,
  move: readOnlyFs,
  copy: readOnlyFs,
};

async function readOnlyFs(): Promise<never> {
  throw new DavFsError('forbidden', 'read-only');
}
