// Templates, linked clones, disk growth and media of stopped VMs, through the API (no guest runs): who may clone,
// what the quota says, what a clone inherits (a UEFI template's variable store, an empty CD-ROM drive).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureTinyImage } from '../helpers/images.ts';
import { addUser, startTestServer, type Client, type TestServer } from '../helpers/server.ts';

const MiB = 2 ** 20;

describe('templates, clones, resize, media of stopped VMs', () => {
  let t: TestServer;
  let alice: Client;
  let bob: Client;
  const vmDir = (id: string) => join(t.config.dataDir, 'vms', id);
  const iso = Buffer.alloc(64 * 1024);
  iso.write('CD001', 16 * 2048 + 1, 'latin1');

  before(async () => {
    await ensureTinyImage();
    t = await startTestServer();
    alice = await addUser(t, 'alice');
    bob = await addUser(t, 'bob');
    assert.equal((await alice.post('/api/images/uploads', { name: 'cd', sizeBytes: iso.length })).status, 201);
    const r = await fetch(`${t.url}/api/images/uploads/cd/data`, {
      method: 'PUT', body: iso,
      headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/octet-stream' },
    });
    assert.equal(r.status, 200);
  });
  after(async () => {
    await t?.destroy();
  });

  test("a UEFI template's clone gets a copy of its variable store and an empty drive; others may not clone it", async () => {
    const v = await alice.post('/api/vms', { name: 'gold', cdrom: 'cd', diskBytes: 32 * MiB, firmware: 'uefi' });
    assert.equal(v.status, 201, JSON.stringify(v.body));
    // Stands for what OVMF wrote while the OS was installed.
    const vars = join(vmDir(v.body.id), 'OVMF_VARS.fd');
    const custom = readFileSync(vars);
    custom.write('installed-boot-entry', 0x1000, 'latin1');
    writeFileSync(vars, custom);
    assert.equal((await alice.post('/api/vms/gold/template')).status, 200);
    assert.equal((statSync(join(vmDir(v.body.id), 'disk.qcow2')).mode & 0o777), 0o400, 'the disk is read-only');
    assert.equal((await alice.post('/api/vms/gold/template')).status, 409, 'once');
    assert.equal((await alice.post('/api/vms/gold/resize', { diskBytes: 64 * MiB })).status, 409);
    assert.equal((await alice.post('/api/vms/gold/media', { action: 'eject' })).status, 409);

    const theft = await bob.post('/api/vms', { name: 'stolen', from: 'gold' });
    assert.equal(theft.status, 403, JSON.stringify(theft.body));
    const notTpl = await alice.post('/api/vms', { name: 'x', from: 'nope' });
    assert.equal(notTpl.status, 404);
    const mixed = await alice.post('/api/vms', { name: 'x', from: 'gold', image: 'tiny' });
    assert.equal(mixed.status, 400);

    const c = await alice.post('/api/vms', { name: 'gold-1', from: 'gold', memoryMiB: 512 });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    assert.equal(c.body.firmware, 'uefi');
    assert.equal(c.body.cdrom, null, 'the drive stays, empty');
    assert.equal(c.body.memoryMiB, 512);
    assert.equal(c.body.diskBytes, 32 * MiB);
    assert.ok(readFileSync(join(vmDir(c.body.id), 'OVMF_VARS.fd')).equals(custom), "the template's store, copied");
    // A stopped VM's drive takes a medium for its next start.
    const ins = await alice.post('/api/vms/gold-1/media', { action: 'insert', image: 'cd' });
    assert.equal(ins.status, 200, JSON.stringify(ins.body));
    assert.equal(ins.body.cdrom, 'cd');
    assert.equal((await bob.post('/api/vms/gold-1/media', { action: 'eject' })).status, 403);
    assert.equal((await alice.post('/api/vms/gold-1/media', { action: 'eject' })).body.cdrom, null);
    const nonTpl = await alice.post('/api/vms', { name: 'x', from: 'gold-1' });
    assert.equal(nonTpl.status, 409);
    assert.match(nonTpl.body.message, /not a template/);
  });

  test('a disk grows within the quota only; never shrinks', async () => {
    assert.equal((await bob.post('/api/vms', { name: 'bobvm', image: 'tiny' })).status, 201);
    assert.equal((await t.admin.req('PUT', '/api/users/bob/quota', { diskBytes: 100 * MiB })).status, 200);
    const over = await bob.post('/api/vms/bobvm/resize', { diskBytes: 128 * MiB });
    assert.equal(over.status, 403, JSON.stringify(over.body));
    assert.equal(over.body.error, 'quota_exceeded');
    const ok = await bob.post('/api/vms/bobvm/resize', { diskBytes: 96 * MiB });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.diskBytes, 96 * MiB);
    assert.equal((await bob.get('/api/me/quota')).body.usage.diskBytes, 96 * MiB);
    assert.equal((await bob.post('/api/vms/bobvm/resize', { diskBytes: 64 * MiB })).status, 400);
    assert.equal((await bob.post('/api/vms/bobvm/resize', { diskBytes: 'big' })).status, 400);
  });
});
