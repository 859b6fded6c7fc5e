// Uploading a checkpoint taken on this host to its bucket (record.ts has the layout). Idempotent: a checkpoint whose
// record is there is skipped, packs and disk images are named by their content and uploaded only when missing. What
// the parent's record already holds (its packs, its disk chain) is not uploaded again.
import { createReadStream, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { sha256, type CheckpointStore, type Manifest } from '../page-store/index.ts';
import { Bucket, NotInBucketError } from './bucket.ts';
import { diskKey, packKey, parseRecord, RECORD_FORMAT, recordKey, type RemoteDisk, type RemoteRecord } from './record.ts';

/** A pack is cut at about this size (the upload holds one in memory). */
const PACK_BYTES = 32 * 2 ** 20;

export interface UploadStats {
  skipped: boolean;
  packs: number;
  packBytes: number;
  disks: number;
  diskBytes: number;
}

export async function uploadCheckpoint(
  bucket: Bucket,
  store: CheckpointStore,
  m: Manifest,
  vm: RemoteRecord['vm'],
): Promise<UploadStats> {
  const stats: UploadStats = { skipped: false, packs: 0, packBytes: 0, disks: 0, diskBytes: 0 };
  if (await bucket.exists(recordKey(m.id))) return { ...stats, skipped: true };
  const localParent = m.parent ? store.get(m.parent) : undefined;
  const parent = localParent ? await readRecord(bucket, localParent.id) : undefined;

  // Objects: what the parent's packs hold is in the bucket; the rest goes in new packs.
  const have = new Set<string>(parent && localParent ? store.references(localParent) : []);
  const packs = [...(parent?.packs ?? [])];
  let chunk: Buffer[] = [];
  let size = 0;
  const flush = async () => {
    if (!chunk.length) return;
    const body = Buffer.concat(chunk);
    const sha = sha256(body).toString('hex');
    const key = packKey(m.vmId, sha);
    if (!(await bucket.exists(key))) {
      await bucket.put(key, body);
      stats.packs++;
      stats.packBytes += body.length;
    }
    if (!packs.includes(sha)) packs.push(sha);
    chunk = [];
    size = 0;
  };
  for (const h of store.references(m)) {
    if (have.has(h)) continue;
    have.add(h);
    const rec = store.objects.record(Buffer.from(h, 'hex'));
    chunk.push(rec);
    size += rec.length;
    if (size >= PACK_BYTES) await flush();
  }
  await flush();

  // Disks: the checkpoint's image, then its backing chain (the parent's record's chain when it is the same).
  const disks: RemoteDisk[] = [];
  let file = m.disks[0]?.file ?? null;
  let backing = m.disks[0]?.backing ?? null;
  const all = store.list(m.vmId);
  while (file) {
    const sha = await fileSha256(join(store.root, file));
    const bytes = statSync(join(store.root, file)).size;
    const key = diskKey(m.vmId, sha);
    if (!(await bucket.exists(key))) {
      await bucket.putFile(key, join(store.root, file));
      stats.disks++;
      stats.diskBytes += bytes;
    }
    disks.push({ file, backing, sha256: sha, bytes });
    if (!backing) break;
    if (parent && parent.disks[0]?.file === backing) {
      disks.push(...parent.disks);
      break;
    }
    file = backing;
    backing = all.find((x) => x.disks[0]?.file === file)?.disks[0]?.backing ?? null;
  }

  const record: RemoteRecord = {
    format: RECORD_FORMAT, uploadedAt: new Date().toISOString(), manifest: m, vm, packs, disks,
  };
  await bucket.put(recordKey(m.id), JSON.stringify(record));
  return stats;
}

/** The record of checkpoint `id`, or undefined when the bucket has none. */
export async function readRecord(bucket: Bucket, id: string): Promise<RemoteRecord | undefined> {
  try {
    return parseRecord((await bucket.get(recordKey(id))).toString('utf8'), id, `${bucket.name}${recordKey(id)}`);
  } catch (e) {
    if (e instanceof NotInBucketError) return undefined;
    throw e;
  }
}

function fileSha256(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}
