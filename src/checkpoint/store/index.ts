// The content-addressed checkpoint store: objects (pages, tables, blobs) in packs, manifests, GC, verify.
export { CheckpointStore, CheckpointWriter, StoreLockedError, type VerifyReport } from './store.ts';
export { ObjectStore, ObjectCorruptError, ObjectMissingError, sha256, type FaultInjection } from './objects.ts';
export { writeFileAtomic, PAGES_PER_TABLE, type Manifest, type ManifestBlock, type DiskRecord, type CaptureStats } from './manifest.ts';
