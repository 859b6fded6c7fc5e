// The off-host checkpoint store's parts that need no bucket: its URL (never credentials), the records it reads
// (no path may escape the store) and the checked reading of downloaded packs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseStoreUrl } from '../../src/checkpoint/remote/bucket.ts';
import { parseRecord } from '../../src/checkpoint/remote/record.ts';
import { CheckpointStore, checkedRecords, ObjectCorruptError, sha256 } from '../../src/checkpoint/index.ts';

test('store URLs: bucket, prefix, endpoint, region; credentials refused', () => {
  assert.deepEqual(parseStoreUrl('s3://my-bucket/a/b/?endpoint=http%3A%2F%2F127.0.0.1%3A9000', {}), {
    bucket: 'my-bucket', prefix: 'a/b/', endpoint: 'http://127.0.0.1:9000', region: 'us-east-1',
  });
  assert.deepEqual(parseStoreUrl('s3://my-bucket', { AWS_ENDPOINT_URL_S3: 'https://s3.example', AWS_REGION: 'eu-1' }), {
    bucket: 'my-bucket', prefix: '', endpoint: 'https://s3.example', region: 'eu-1',
  });
  assert.throws(() => parseStoreUrl('s3://AKIA1:hunter2@bucket/p', {}), (e: Error) =>
    /never holds credentials/.test(e.message) && !e.message.includes('hunter2'));
  assert.throws(() => parseStoreUrl('s3://bucket/p?endpoint=http://u:pw-hunter3@host', {}), (e: Error) =>
    /without credentials/.test(e.message) && !e.message.includes('hunter3'));
  assert.throws(() => parseStoreUrl('s3://bucket/p?secret=x', {}), /unknown parameter 'secret'/);
  assert.throws(() => parseStoreUrl('https://bucket/p', {}), /only s3:\/\/BUCKET\/PREFIX/);
  assert.throws(() => parseStoreUrl('s3://B_ad/p', {}), /not a valid bucket name/);
  assert.throws(() => parseStoreUrl('s3://bucket/a%5Cb', {}), /bad prefix/);
  assert.throws(() => parseStoreUrl('not a url', {}), /not a URL/);
});

test('records naming paths outside the store are refused', () => {
  const rec = (file: string) => JSON.stringify({
    format: 1, manifest: { id: 'c1', vmId: 'v1', parent: null, stream: { blocks: [] }, disks: [{ file }] },
    vm: { name: 'x', spec: {} }, packs: [], disks: [{ file, backing: null, sha256: 'a'.repeat(64), bytes: 1 }],
  });
  assert.equal(parseRecord(rec('disks/v1/c1.qcow2'), 'c1', 'r').manifest.id, 'c1');
  assert.throws(() => parseRecord(rec('disks/../../etc/x.qcow2'), 'c1', 'r'), /bad disk/);
  assert.throws(() => parseRecord(rec('disks/v1/c1.qcow2'), 'c2', 'r'), /names checkpoint 'c1'/);
  assert.throws(() => parseRecord('{', 'c1', 'r'), /not JSON/);
});

test('a downloaded pack is read record by record, each checked against its hash', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ot-recs-'));
  try {
    const store = new CheckpointStore(dir);
    const s = store.objects.session();
    const pages = [Buffer.alloc(4096, 1), randomBytes(4096)]; // deflated, raw
    const hashes = pages.map((p) => s.putBlob(p));
    s.commit();
    const pack = Buffer.concat(hashes.map((h) => store.objects.record(h)));
    assert.deepEqual([...checkedRecords(pack, 'p')].map((r) => r.hash.toString('hex')), hashes.map((h) => h.toString('hex')));
    const bad = Buffer.from(pack);
    bad[bad.length - 3]! ^= 1;
    assert.throws(() => [...checkedRecords(bad, 'p')], (e: Error) =>
      e instanceof ObjectCorruptError && /p at byte \d+ \(object [0-9a-f]+…\): content does not match its hash/.test(e.message));
    assert.throws(() => [...checkedRecords(pack.subarray(0, pack.length - 1), 'p')], /truncated record/);
    assert.ok(sha256(pages[0]!).equals(hashes[0]!));
    store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
