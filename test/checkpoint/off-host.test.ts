// Checkpoints off the host: server A uploads each checkpoint to a bucket (a real local S3 server), A and its data
// directory go away, and server B, with a data directory of its own, restores the VM from the bucket alone. A pack
// corrupted in the bucket is refused before anything is created.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { ensureTinyImage } from '../helpers/images.ts';
import { startLocalS3, type LocalS3 } from '../helpers/s3.ts';
import { addUser, startTestServer, type TestServer } from '../helpers/server.ts';

const BUCKET = 'oriel-ckpt';

describe('checkpoints off the host', () => {
  let s3: LocalS3;
  let a: TestServer | undefined;
  let b: TestServer | undefined;
  let url = '';
  const ids: string[] = [];
  let mac = '';

  const waitOp = async (t: TestServer, id: string) =>
    (await t.admin.get(`/api/operations/${id}/wait?timeoutSec=120`)).body;
  const sh = async (t: TestServer, vm: string, cmd: string) => {
    const r = await t.admin.post(`/api/vms/${vm}/exec`, { argv: ['sh', '-c', cmd], timeoutSec: 60 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.stdout as string;
  };
  const take = async (t: TestServer) => {
    const op = await t.admin.post('/api/vms/mover/checkpoints', {});
    assert.equal(op.status, 202, JSON.stringify(op.body));
    const done = await waitOp(t, op.body.id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    return done.result.id as string;
  };

  before(async () => {
    await ensureTinyImage();
    s3 = await startLocalS3([BUCKET]);
    url = `s3://${BUCKET}/site-a?endpoint=${encodeURIComponent(s3.endpoint)}`;
  });
  after(async () => {
    await a?.destroy();
    await b?.destroy();
    await s3?.close();
  });

  test('server A uploads its checkpoints, content-addressed and once', async () => {
    a = await startTestServer({ checkpointStore: url });
    assert.equal((await a.admin.post('/api/networks', { name: 'lan', subnet: '10.77.9.0/24' })).status, 201);
    const made = await a.admin.post('/api/vms', { name: 'mover', image: 'tiny', memoryMiB: 128, networks: ['lan'] });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    mac = made.body.networks[0].mac;
    assert.equal((await a.admin.post('/api/vms/mover/start')).status, 200);
    await sh(a, 'mover', 'true');
    await sh(a, 'mover', 'echo first > /tmp/marker');
    ids.push(await take(a));
    const afterFirst = await s3.keys(BUCKET, 'site-a/');
    await sh(a, 'mover', "echo moved-$((6*7)) > /tmp/marker; printf 'disk-marker' | dd of=/dev/vda bs=512 conv=sync "
      + 'oflag=direct 2>/dev/null');
    ids.push(await take(a));
    const keys = await s3.keys(BUCKET, 'site-a/');
    for (const id of ids) assert.ok(keys.includes(`site-a/checkpoints/${id}.json`), `record of ${id} in ${keys}`);
    const packs = (k: string[]) => k.filter((x) => x.endsWith('.pack'));
    const disks = (k: string[]) => k.filter((x) => x.endsWith('.qcow2'));
    // The second checkpoint adds only what changed: a pack and a disk image of its own, the first's are shared.
    assert.ok(packs(keys).length > packs(afterFirst).length, 'a new pack');
    assert.ok(packs(afterFirst).every((k) => keys.includes(k)));
    assert.equal(disks(keys).length, 2);
    const rec = JSON.parse(await body(ids[1]!));
    assert.ok(rec.packs.length >= 2, 'the record names its parent\'s packs too');
    assert.equal(rec.disks.length, 2, 'its disk image and the one it is backed by');
    assert.ok(!JSON.stringify(rec).includes('S3RVER'), 'no credentials in the bucket');
    assert.deepEqual(rec.vm.networks, ['lan'], 'the card\'s network by name');
    // Again: nothing uploaded.
    const again = await a.server.ctx.checkpoints.upload(ids[1]!);
    assert.equal(again.skipped, true);
    assert.deepEqual(await s3.keys(BUCKET, 'site-a/'), keys);
    // Server A and everything on its host go away.
    const dirA = a.config.dataDir;
    await a.destroy();
    a = undefined;
    assert.ok(!existsSync(dirA));
  });

  test('server B restores the VM from the bucket: the guest runs with its marker and disk', async () => {
    b = await startTestServer();
    // Its card needs a network of the same name here: without one, a clear refusal before anything is made.
    const early = await b.admin.post('/api/checkpoints/restore-from-store', { url, vm: 'mover', id: ids[1] });
    const refused = await waitOp(b, early.body.id);
    assert.equal(refused.status, 'failed');
    assert.match(refused.error, /had cards on network 'lan': create a network of that name here first/);
    assert.equal((await b.admin.get('/api/vms/mover')).status, 404);
    assert.equal((await b.admin.post('/api/networks', { name: 'lan', subnet: '10.77.9.0/24' })).status, 201);
    const op = await b.admin.post('/api/checkpoints/restore-from-store', { url, vm: 'mover', id: ids[1] });
    assert.equal(op.status, 202, JSON.stringify(op.body));
    const done = await waitOp(b, op.body.id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
    const vm = (await b.admin.get('/api/vms/mover')).body;
    assert.equal(vm.state, 'running');
    assert.equal((await sh(b, 'mover', 'cat /tmp/marker')).trim(), 'moved-42');
    const disk = await sh(b, 'mover', 'dd if=/dev/vda bs=512 count=1 iflag=direct 2>/dev/null | head -c 11');
    assert.equal(disk, 'disk-marker');
    // On B's network of that name, with the same MAC (the guest's card, restored, has it).
    assert.equal(vm.networks.length, 1);
    assert.equal(vm.networks[0].network, 'lan');
    assert.equal(vm.networks[0].mac, mac);
    assert.match(vm.networks[0].ip, /^10\.77\.9\./, 'a lease on B\'s network');
    assert.equal((await sh(b, 'mover', 'cat /sys/class/net/eth0/address')).trim(), mac);
    assert.ok(existsSync(join(b.config.dataDir, 'checkpoints', 'manifests', `${ids[1]}.json`)), 'cached locally');
  });

  test("a schedule sends its checkpoints to a store of its own (admins choose it)", async () => {
    const siteB = `s3://${BUCKET}/site-b?endpoint=${encodeURIComponent(s3.endpoint)}`;
    const bad = await b!.admin.req('PUT', '/api/vms/mover/checkpoint-schedule', { every: '2s', keepLast: 1, store: 'ftp://x' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message ?? bad.body.error, /only s3:\/\/BUCKET\/PREFIX is supported/);
    const carol = await addUser(b!, 'carol');
    assert.equal((await carol.post('/api/vms', { name: 'carols', image: 'tiny', memoryMiB: 64 })).status, 201);
    const own = await carol.req('PUT', '/api/vms/carols/checkpoint-schedule', { every: '1h', keepLast: 1, store: siteB });
    assert.equal(own.status, 403, 'only admins name a store');
    const set = await b!.admin.req('PUT', '/api/vms/mover/checkpoint-schedule', { every: '2s', keepLast: 2, store: siteB });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.equal(set.body.store, siteB);
    const record = async () => (await s3.keys(BUCKET, 'site-b/checkpoints/')).length > 0;
    for (let i = 0; i < 120 && !(await record()); i++) await new Promise((r) => setTimeout(r, 500));
    assert.ok(await record(), 'a scheduled checkpoint was uploaded to the schedule\'s store');
    assert.equal((await b!.admin.delete('/api/vms/mover/checkpoint-schedule')).status, 204);
  });

  test('a corrupted pack in the bucket is refused with a clear error, and nothing is created', async () => {
    const rec = JSON.parse(await body(ids[0]!));
    const key = `site-a/vms/${rec.manifest.vmId}/packs/${rec.packs[0]}.pack`;
    const data = Buffer.from(await (await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key })))
      .Body!.transformToByteArray());
    data[data.length >> 1]! ^= 0x5a;
    await s3.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: data }));
    const op = await b!.admin.post('/api/checkpoints/restore-from-store', { url, vm: 'mover', id: ids[0], as: 'old' });
    assert.equal(op.status, 202, JSON.stringify(op.body));
    const done = await waitOp(b!, op.body.id);
    assert.equal(done.status, 'failed');
    assert.match(done.error, new RegExp(`${rec.packs[0]}\\.pack is corrupt: its content does not match its SHA-256`));
    assert.equal((await b!.admin.get('/api/vms/old')).status, 404);
    assert.ok(!existsSync(join(b!.config.dataDir, 'checkpoints', 'manifests', `${ids[0]}.json`)));
    // Only admins (the server reaches the URL with its own credentials); bad input gets a clear refusal.
    const bob = await addUser(b!, 'bob');
    assert.equal((await bob.post('/api/checkpoints/restore-from-store', { url, vm: 'mover', id: ids[0] })).status, 403);
    const bad = await b!.admin.post('/api/checkpoints/restore-from-store', { url: 'ftp://x/y', vm: 'mover', id: ids[0] });
    assert.equal(bad.status, 202);
    assert.match((await waitOp(b!, bad.body.id)).error, /only s3:\/\/BUCKET\/PREFIX is supported/);
  });

  async function body(id: string): Promise<string> {
    const r = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: `site-a/checkpoints/${id}.json` }));
    return r.Body!.transformToString();
  }
});
