// Large files go to the off-host checkpoint store in parts (a single PUT takes at most 5 GiB): against a real local
// S3 server, a file of three parts comes back byte for byte and is one object; a failed upload leaves no object (its
// parts are aborted: s3rver has no AbortMultipartUpload to check that against).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { Bucket } from '../../src/checkpoint/remote/bucket.ts';
import { startLocalS3, type LocalS3 } from '../helpers/s3.ts';

const MiB = 2 ** 20;
let s3: LocalS3;
let dir: string;
let bucket: Bucket;

before(async () => {
  s3 = await startLocalS3(['parts']);
  dir = mkdtempSync(join(tmpdir(), 'ot-mp-'));
  bucket = new Bucket({ bucket: 'parts', prefix: 'p/', endpoint: s3.endpoint, region: 'us-east-1' }, { partBytes: 5 * MiB });
});
after(async () => {
  bucket?.close();
  await s3?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a file above the part size goes up in parts and comes back whole', async () => {
  const body = randomBytes(12 * MiB + 12345);
  const file = join(dir, 'disk.qcow2');
  writeFileSync(file, body);
  assert.equal(await bucket.putFile('disks/big', file), 3);
  const back = join(dir, 'back');
  assert.equal(await bucket.getFile('disks/big', back), createHash('sha256').update(body).digest('hex'));
  const head = await s3.client.send(new HeadObjectCommand({ Bucket: 'parts', Key: 'p/disks/big' }));
  assert.equal(head.ContentLength, body.length);
  // A small one is a single PUT.
  writeFileSync(join(dir, 'small'), body.subarray(0, MiB));
  assert.equal(await bucket.putFile('disks/small', join(dir, 'small')), 1);
  assert.ok((await bucket.get('disks/small')).equals(body.subarray(0, MiB)));
});

test('an upload that fails part-way fails with the reason and leaves no object', async () => {
  const file = join(dir, 'going');
  writeFileSync(file, randomBytes(11 * MiB));
  // The file shrinks under the upload (after the first part is read): the second part cannot be read whole.
  const upload = bucket.putFile('disks/broken', file);
  writeFileSync(file, randomBytes(MiB));
  await assert.rejects(upload, /changed while it was uploaded/);
  assert.equal(await bucket.exists('disks/broken'), false);
});
