// The layout of a checkpoint store in a bucket (under the URL's prefix):
//   checkpoints/<id>.json          the record: the manifest, the VM's name and spec, the packs and disk images it
//                                  needs; written last, so a checkpoint is in the bucket exactly when its record is
//   vms/<vmId>/packs/<sha256>.pack objects (pages, page tables, blobs) as the local packs hold them (header + stored
//                                  bytes), laid end to end; named by the SHA-256 of the whole pack
//   vms/<vmId>/disks/<sha256>.qcow2 one checkpoint disk image each, named by the SHA-256 of the file
// Everything but the records is content-addressed: uploaded once, never rewritten. A record's packs hold every object
// its manifest names: its parent's packs plus one or more for what the parent did not name.
import type { VmSpec } from '../../vm/spec.ts';
import type { Manifest } from '../page-store/index.ts';

export const RECORD_FORMAT = 1;

export interface RemoteDisk {
  /** Where the image goes under a checkpoint root (as in the manifest: disks/<vmId>/<id>.qcow2). */
  file: string;
  backing: string | null;
  sha256: string;
  bytes: number;
}

export interface RemoteRecord {
  format: typeof RECORD_FORMAT;
  uploadedAt: string;
  manifest: Manifest;
  /** `networks`: the name of each card's network on the server that uploaded it (null: unknown), in card order. */
  vm: { name: string; spec: VmSpec; networks?: (string | null)[] };
  /** SHA-256 names of the packs holding every object the manifest names. */
  packs: string[];
  /** The checkpoint's disk image first, then the images it is backed by, in chain order. */
  disks: RemoteDisk[];
}

const HEX64 = /^[0-9a-f]{64}$/;
const ID = /^[A-Za-z0-9_-]+$/;
const DISK_FILE = /^disks\/[A-Za-z0-9_-]+\/[A-Za-z0-9_-]+\.qcow2$/;

export const recordKey = (id: string): string => `checkpoints/${id}.json`;
export const packKey = (vmId: string, sha: string): string => `vms/${vmId}/packs/${sha}.pack`;
export const diskKey = (vmId: string, sha: string): string => `vms/${vmId}/disks/${sha}.qcow2`;

/** A record read from the bucket, checked for shape (it names files this host will write: no path may escape). */
export function parseRecord(text: string, id: string, where: string): RemoteRecord {
  let r: RemoteRecord;
  try {
    r = JSON.parse(text) as RemoteRecord;
  } catch {
    throw new Error(`${where} is not JSON`);
  }
  const bad = (what: string) => new Error(`${where} is not a checkpoint record Oriel can read: ${what}`);
  if (r?.format !== RECORD_FORMAT) throw bad(`format ${String(r?.format)}`);
  const m = r.manifest;
  if (m?.id !== id) throw bad(`it names checkpoint '${String(m?.id)}'`);
  if (typeof m.vmId !== 'string' || !ID.test(m.vmId)) throw bad('bad VM id');
  if (m.parent !== null && !ID.test(String(m.parent))) throw bad('bad parent');
  if (!m.stream || !Array.isArray(m.stream.blocks) || !Array.isArray(m.disks)) throw bad('no stream or disks');
  if (typeof r.vm?.name !== 'string' || typeof r.vm.spec !== 'object' || !r.vm.spec) throw bad('no VM spec');
  const nets = r.vm.networks;
  if (nets !== undefined && !(Array.isArray(nets) && nets.every((n) => n === null || typeof n === 'string')))
    throw bad('bad network names');
  if (!Array.isArray(r.packs) || !r.packs.every((p) => HEX64.test(p))) throw bad('bad pack names');
  if (!Array.isArray(r.disks)) throw bad('no disk list');
  for (const d of r.disks) {
    if (!DISK_FILE.test(String(d?.file)) || !HEX64.test(String(d.sha256))) throw bad(`bad disk '${String(d?.file)}'`);
    if (d.backing !== null && !DISK_FILE.test(String(d.backing))) throw bad(`bad backing '${String(d.backing)}'`);
  }
  for (const d of m.disks) {
    if (!DISK_FILE.test(String(d.file)) || !r.disks.some((x) => x.file === d.file)) throw bad(`disk '${d.file}'`);
  }
  return r;
}
