// Bringing a checkpoint from its bucket into this host's store (the local store is the cache): its packs (each
// checked against its name, every object in it against its hash), its disk chain (each image checked against its
// name, then pointed at this host's copy of its backing), and its manifest last. Nothing is written to the store
// before a pack has been checked whole; a corrupt pack or image leaves the store as it was.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  checkedRecords, sha256, writeFileAtomic, type CheckpointStore, type ParsedRecord,
} from '../page-store/index.ts';
import type { Bucket } from './bucket.ts';
import { diskKey, packKey, type RemoteRecord } from './record.ts';
import { readRecord } from './upload.ts';

const run = promisify(execFile);

export class StoreCorruptError extends Error {
  override name = 'StoreCorruptError';
}

/** Downloads what checkpoint `id` needs into `store` unless it is there already; returns its record. */
export async function fetchCheckpoint(
  bucket: Bucket,
  store: CheckpointStore,
  qemuImg: string,
  id: string,
  progress?: (stage: string) => void,
): Promise<RemoteRecord> {
  const rec = await readRecord(bucket, id);
  if (!rec) throw new Error(`checkpoint '${id}' is not in ${bucket.name}`);
  const m = rec.manifest;
  if (store.get(id)) return rec; // already here: its manifest is written last
  const release = await store.holdWriter();
  try {
    const session = store.objects.session();
    try {
      for (const [i, sha] of rec.packs.entries()) {
        progress?.(`downloading pack ${i + 1} of ${rec.packs.length}`);
        const key = packKey(m.vmId, sha);
        const body = await bucket.get(key);
        const where = `${bucket.name}${key}`;
        if (sha256(body).toString('hex') !== sha)
          throw new StoreCorruptError(`${where} is corrupt: its content does not match its SHA-256 name`);
        let recs: ParsedRecord[];
        try {
          recs = [...checkedRecords(body, where)];
        } catch (e) {
          throw new StoreCorruptError((e as Error).message);
        }
        for (const r of recs) if (!session.has(r.hash)) session.putStored(r.hash, r.stored, r);
      }
      session.commit();
    } catch (e) {
      session.abort();
      throw e;
    }
    // Every object the manifest names must now be here (reading the tables checks them too).
    try {
      await store.checkAll(m);
    } catch (e) {
      throw new StoreCorruptError(`checkpoint ${id} in ${bucket.name} is incomplete: ${(e as Error).message}`);
    }
    progress?.('downloading the disk images');
    for (const d of [...rec.disks].reverse()) {
      const dest = join(store.root, d.file);
      if (existsSync(dest)) continue;
      mkdirSync(dirname(dest), { recursive: true, mode: 0o700 });
      const tmp = `${dest}.download-${process.pid}`;
      try {
        const key = diskKey(m.vmId, d.sha256);
        const got = await bucket.getFile(key, tmp);
        if (got !== d.sha256)
          throw new StoreCorruptError(`${bucket.name}${key} is corrupt: its content does not match its SHA-256 name`);
        // Its backing was named by the other host's path: point it at this store's copy.
        if (d.backing)
          await run(qemuImg, ['rebase', '-q', '-u', '-F', 'qcow2', '-b', join(store.root, d.backing), tmp]);
        renameSync(tmp, dest);
      } finally {
        rmSync(tmp, { force: true });
      }
    }
    writeFileAtomic(store.manifestPath(id), JSON.stringify(m));
    return rec;
  } finally {
    release();
  }
}
