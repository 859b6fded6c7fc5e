// Checkpoints off the host: an S3-compatible bucket as a second home of a server's checkpoints (uploaded after each
// capture; the local store stays the cache), and restores on another server from it (README.md, "Off the host").
export { Bucket, parseStoreUrl, redact, NotInBucketError, type BucketLocation } from './bucket.ts';
export { uploadCheckpoint, readRecord, type UploadStats } from './upload.ts';
export { fetchCheckpoint, StoreCorruptError } from './download.ts';
export { specForThisHost } from './spec.ts';
export type { RemoteRecord, RemoteDisk } from './record.ts';
