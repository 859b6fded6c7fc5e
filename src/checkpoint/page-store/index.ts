// The content-addressed checkpoint store: objects (pages, tables, blobs) in packs, manifests, GC, verify.
export {
  CheckpointStore,
  CheckpointWriter,
  StoreLockedError,
  type VerifyReport,
  type StoreOptions,
  type ManifestMeta,
  type SealedStream,
} from './store.ts';
export {
  ObjectStore, ObjectCorruptError, ObjectMissingError, sha256, checkedRecords, type FaultInjection, type ParsedRecord,
} from './objects.ts';
export {
  writeFileAtomic,
  PAGES_PER_TABLE,
  type Manifest,
  type ManifestBlock,
  type DiskRecord,
  type CaptureStats,
} from './manifest.ts';
export { PagePool, captureThreads, defaultPoolSize } from './page-pool.ts';
