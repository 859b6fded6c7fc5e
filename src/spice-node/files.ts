// Files on the Node host as sources for the agent's file transfer: read piece by piece, never whole.
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { FileSource } from '../spice/index.ts';

export interface NodeFileSource extends FileSource {
  close(): Promise<void>;
}

/** Opens `path` for a transfer; the name the guest sees is its basename. */
export async function nodeFileSource(path: string): Promise<NodeFileSource> {
  const st = await stat(path);
  if (!st.isFile()) throw new Error(`${path}: not a regular file`);
  const fh = await open(path, 'r');
  return {
    name: basename(path),
    size: st.size,
    async read(offset, length) {
      const buf = new Uint8Array(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got === length ? buf : buf.subarray(0, got);
    },
    close: () => fh.close(),
  };
}
