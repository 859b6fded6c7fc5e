// A UEFI VM's variable store travels in its checkpoints: each pflash is a RAM block of the migration stream, and
// QEMU writes the whole store back to the VM's VARS file once it has loaded it. A VM restored `--as` a new VM gets
// the store the original had at the checkpoint, in its own folder.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OrielClient } from '../../src/api/client.ts';
import { ensureTestIso } from '../helpers/iso.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('UEFI variable store in checkpoints', () => {
  let t: TestServer;
  const wait = async (opId: string) => {
    const op = (await t.admin.get(`/api/operations/${opId}/wait?timeoutSec=180`)).body;
    assert.equal(op.status, 'succeeded', JSON.stringify(op));
    return op;
  };

  before(async () => {
    const iso = await ensureTestIso();
    t = await startTestServer();
    const client = new OrielClient({ baseUrl: t.url, authHeaders: () => ({ authorization: `Bearer ${t.adminToken}` }) });
    const data = readFileSync(iso);
    await client.uploads.send('installer', { size: data.length, read: async (s, e) => new Uint8Array(data.subarray(s, e)) });
  });
  after(async () => {
    await t?.destroy();
  });

  test('restored as a new VM, the copy has the original\'s store', async () => {
    const vm = await t.admin.post('/api/vms', {
      name: 'efi', cdrom: 'installer', diskBytes: 64 * 2 ** 20, memoryMiB: 512, firmware: 'uefi',
    });
    assert.equal(vm.status, 201, JSON.stringify(vm.body));
    assert.equal((await t.admin.post('/api/vms/efi/start')).status, 200);
    const end = Date.now() + 120_000;
    while (!/ORIEL-READY/.test((await t.admin.get('/api/vms/efi/log')).body.text) && Date.now() < end)
      await new Promise((r) => setTimeout(r, 500));
    const vars = readFileSync(join(t.config.dataDir, 'vms', vm.body.id, 'OVMF_VARS.fd'));
    const take = await t.admin.post('/api/vms/efi/checkpoints', {});
    assert.equal(take.status, 202, JSON.stringify(take.body));
    const ckpt = (await wait(take.body.id)).result;
    const restore = await t.admin.post(`/api/vms/efi/checkpoints/${ckpt.id}/restore`, { as: 'efi-copy' });
    assert.equal(restore.status, 202, JSON.stringify(restore.body));
    await wait(restore.body.id);
    const copy = (await t.admin.get('/api/vms/efi-copy')).body;
    assert.equal(copy.firmware, 'uefi');
    assert.ok(['running', 'paused'].includes(copy.state), copy.state);
    const copied = readFileSync(join(t.config.dataDir, 'vms', copy.id, 'OVMF_VARS.fd'));
    assert.ok(copied.equals(vars), "the copy's store is the original's at the checkpoint");
    assert.ok(!copied.equals(readFileSync('/usr/share/OVMF/OVMF_VARS_4M.fd')), 'not a blank store');
  });
});
