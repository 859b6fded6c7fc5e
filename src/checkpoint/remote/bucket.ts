// Where checkpoints go off the host: an S3-compatible bucket named by a URL, `s3://BUCKET/PREFIX`, with an optional
// `?endpoint=URL` (else AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL; else AWS itself) and `&region=` (else AWS_REGION,
// else us-east-1). Credentials come only from the SDK's standard sources (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, a profile, an instance role): never from the URL, which is shown in logs and operations.
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand,
  HeadObjectCommand, PutObjectCommand, S3Client, UploadPartCommand,
} from '@aws-sdk/client-s3';

export interface BucketLocation {
  bucket: string;
  /** '' or ending in '/'. */
  prefix: string;
  endpoint?: string;
  region: string;
}

/** Parses a store URL; throws an Error saying what is wrong. */
export function parseStoreUrl(url: string, env: NodeJS.ProcessEnv = process.env): BucketLocation {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`checkpoint store '${url}' is not a URL: give s3://BUCKET/PREFIX`);
  }
  if (u.protocol !== 's3:') throw new Error(`checkpoint store '${redact(url)}': only s3://BUCKET/PREFIX is supported`);
  if (u.username || u.password)
    throw new Error('a checkpoint store URL never holds credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
  const bucket = u.hostname;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
    throw new Error(`checkpoint store '${redact(url)}': '${bucket}' is not a valid bucket name`);
  const path = decodeURIComponent(u.pathname).replace(/^\/+|\/+$/g, '');
  if (path.split('/').some((p) => p === '.' || p === '..') || /[\0\\]/.test(path))
    throw new Error(`checkpoint store '${redact(url)}': bad prefix '${path}'`);
  for (const k of u.searchParams.keys()) {
    if (k !== 'endpoint' && k !== 'region')
      throw new Error(`checkpoint store '${redact(url)}': unknown parameter '${k}' (endpoint, region)`);
  }
  const endpoint = u.searchParams.get('endpoint') ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  if (endpoint) {
    let e: URL;
    try {
      e = new URL(endpoint);
    } catch {
      throw new Error(`checkpoint store endpoint '${redact(endpoint)}' is not a URL`);
    }
    if (!['http:', 'https:'].includes(e.protocol) || e.username || e.password)
      throw new Error(`checkpoint store endpoint '${redact(endpoint)}' must be http(s)://HOST[:PORT] without credentials`);
  }
  return {
    bucket,
    prefix: path ? `${path}/` : '',
    ...(endpoint ? { endpoint } : {}),
    region: u.searchParams.get('region') ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
  };
}

/** A URL as it may be shown: no query, no user info. */
export function redact(url: string): string {
  return url.replace(/\?.*$/, '').replace(/\/\/[^/@]*@/, '//');
}

/** S3's limits for a multipart upload: at most 10,000 parts, each but the last at least 5 MiB. */
const MAX_PARTS = 10_000;
const MIN_PART_BYTES = 5 * 2 ** 20;
/** Files above this go up in parts (a single PUT takes at most 5 GiB, and a failed one starts again from 0). */
export const DEFAULT_PART_BYTES = 64 * 2 ** 20;

/** `bytes` of `file` from `start`; throws if the file has fewer (it changed under the upload). */
async function readPart(file: string, start: number, bytes: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(bytes);
    let got = 0;
    while (got < bytes) {
      const { bytesRead } = await fh.read(buf, got, bytes - got, start + got);
      if (!bytesRead) throw new Error(`${file} changed while it was uploaded (${start + got} bytes, not ${start + bytes})`);
      got += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}

export class NotInBucketError extends Error {
  override name = 'NotInBucketError';
}

/** The few object operations the checkpoint store needs, on keys under the location's prefix. */
export class Bucket {
  private readonly s3: S3Client;

  /** `partBytes`: the size of a multipart upload's parts (tests make it small; never below S3's 5 MiB). */
  constructor(readonly loc: BucketLocation, private readonly o: { partBytes?: number } = {}) {
    this.s3 = new S3Client({
      region: loc.region,
      ...(loc.endpoint ? { endpoint: loc.endpoint, forcePathStyle: true } : {}),
      // S3-compatible servers do not all take the SDK's default streaming checksums (aws-chunked uploads): content
      // is checked by its SHA-256 name instead.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 4,
      // A store that stops answering fails the operation instead of holding it (socket idle limit, not total time).
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
    });
  }

  /** `s3://bucket/prefix`, for messages. */
  get name(): string {
    return `s3://${this.loc.bucket}/${this.loc.prefix}`;
  }

  close(): void {
    this.s3.destroy();
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.call(key, () => this.s3.send(new HeadObjectCommand({ Bucket: this.loc.bucket, Key: this.key(key) })));
      return true;
    } catch (e) {
      if (e instanceof NotInBucketError) return false;
      throw e;
    }
  }

  async put(key: string, body: Buffer | string): Promise<void> {
    await this.call(key, () =>
      this.s3.send(new PutObjectCommand({ Bucket: this.loc.bucket, Key: this.key(key), Body: body })));
  }

  /**
   * Uploads a file, read as a stream (disk images may be large): above one part's size in a multipart upload, parts
   * one after another, each read into memory first (so the SDK can retry it, and a file that shrinks is an error,
   * not a request waiting for bytes that never come); a failed upload is aborted, so the bucket keeps no parts.
   * Returns the number of parts (1: a single PUT).
   */
  async putFile(key: string, file: string): Promise<number> {
    const size = statSync(file).size;
    const part = Math.max(this.o.partBytes ?? DEFAULT_PART_BYTES, MIN_PART_BYTES, Math.ceil(size / MAX_PARTS));
    if (size <= part) {
      await this.call(key, () => this.s3.send(new PutObjectCommand({
        Bucket: this.loc.bucket, Key: this.key(key), Body: createReadStream(file), ContentLength: size,
      })));
      return 1;
    }
    const where = { Bucket: this.loc.bucket, Key: this.key(key) };
    const { UploadId } = await this.call(key, () => this.s3.send(new CreateMultipartUploadCommand(where)));
    try {
      const parts: { ETag: string; PartNumber: number }[] = [];
      for (let start = 0, n = 1; start < size; start += part, n++) {
        const body = await readPart(file, start, Math.min(part, size - start));
        const r = await this.call(key, () => this.s3.send(new UploadPartCommand({
          ...where, UploadId, PartNumber: n, Body: body,
        })));
        if (!r.ETag) throw new Error(`checkpoint store ${this.name}${key}: part ${n} uploaded without an ETag`);
        parts.push({ ETag: r.ETag, PartNumber: n });
      }
      await this.call(key, () => this.s3.send(new CompleteMultipartUploadCommand({
        ...where, UploadId, MultipartUpload: { Parts: parts },
      })));
      return parts.length;
    } catch (e) {
      await this.s3.send(new AbortMultipartUploadCommand({ ...where, UploadId })).catch(() => undefined);
      throw e;
    }
  }

  async get(key: string): Promise<Buffer> {
    const r = await this.call(key, () =>
      this.s3.send(new GetObjectCommand({ Bucket: this.loc.bucket, Key: this.key(key) })));
    return Buffer.from(await r.Body!.transformToByteArray());
  }

  /** Downloads into `file`; returns the SHA-256 (hex) of what was written. */
  async getFile(key: string, file: string): Promise<string> {
    const r = await this.call(key, () =>
      this.s3.send(new GetObjectCommand({ Bucket: this.loc.bucket, Key: this.key(key) })));
    const h = createHash('sha256');
    const tap = new Transform({ transform(chunk: Buffer, _e, cb) { h.update(chunk); cb(null, chunk); } });
    await pipeline(r.Body as Readable, tap, createWriteStream(file, { mode: 0o600 }));
    return h.digest('hex');
  }

  private key(k: string): string {
    return this.loc.prefix + k;
  }

  /** Runs an S3 call; errors name the key and the store, a missing key is a NotInBucketError. */
  private async call<T>(key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const err = e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
      const status = err.$metadata?.httpStatusCode;
      if (status === 404 || err.name === 'NoSuchKey' || err.name === 'NotFound')
        throw new NotInBucketError(`${this.name}${key} is not in the checkpoint store`);
      throw new Error(`checkpoint store ${this.name}${key}: ${err.name ?? 'error'}${status ? ` (HTTP ${status})` : ''}` +
        `${err.message && err.message !== err.name ? `: ${err.message}` : ''}`);
    }
  }
}
