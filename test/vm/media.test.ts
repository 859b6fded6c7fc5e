// Your own OS from install media, with real QEMU (TCG): an ISO made in the test (helpers/iso.ts) is uploaded and
// boots from a CD-ROM drive under BIOS (ISOLINUX) and under UEFI (OVMF + GRUB), behind an empty disk; the medium is
// ejected and inserted on the running VM; a stopped tiny VM becomes a template whose linked clone boots and sees the
// template's disk; a grown disk shows its new size in the guest.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { OrielClient } from '../../src/api/client.ts';
import { ensureTestIso } from '../helpers/iso.ts';
import { ensureTinyImage } from '../helpers/images.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const MiB = 2 ** 20;

describe('install media, firmware, templates, resize', () => {
  let t: TestServer;
  let iso: string;

  /** Waits until the VM's serial console (this boot) matches `re`. */
  const waitSerial = async (vm: string, re: RegExp, timeoutMs = 90_000) => {
    const end = Date.now() + timeoutMs;
    let text = '';
    while (Date.now() < end) {
      text = (await t.admin.get(`/api/vms/${vm}/log?lines=400`)).body.text ?? '';
      if (re.test(text)) return text;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.fail(`VM '${vm}' did not print ${re} within ${timeoutMs} ms; serial log:\n${text.slice(-2000)}`);
  };
  const act = async (vm: string, action: string, body: unknown = {}) => {
    const r = await t.admin.post(`/api/vms/${vm}/${action}`, body);
    assert.equal(r.status, 200, `${action} ${vm}: ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const cdrom = async (vm: string) => {
    const blocks = await t.server.ctx.vms.qmp(vm).execute('query-block') as
      { qdev?: string; tray_open?: boolean; inserted?: { file: string } }[];
    return blocks.find((b) => b.qdev === 'cd0' || b.qdev?.includes('/cd0/'));
  };

  before(async () => {
    await ensureTinyImage();
    iso = await ensureTestIso();
    t = await startTestServer();
    const client = new OrielClient({ baseUrl: t.url, authHeaders: () => ({ authorization: `Bearer ${t.adminToken}` }) });
    const data = readFileSync(iso);
    const img = await client.uploads.send('installer', {
      size: data.length, read: async (s, e) => new Uint8Array(data.subarray(s, e)),
    });
    assert.equal(img.kind, 'iso');
  });
  after(async () => {
    await t?.destroy();
  });

  test('BIOS: the ISO boots from the CD-ROM behind an empty disk; eject and insert on the running VM', async () => {
    const c = await t.admin.post('/api/vms', { name: 'bios', cdrom: 'installer', diskBytes: 64 * MiB, memoryMiB: 256 });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    assert.equal(c.body.firmware, 'bios');
    await act('bios', 'start');
    await waitSerial('bios', /ORIEL-READY/);
    const disk = join(t.config.dataDir, 'vms', c.body.id, 'disk.qcow2');
    assert.equal(JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', disk], { encoding: 'utf8' }))['virtual-size'],
      64 * MiB);
    assert.ok((await cdrom('bios'))?.inserted?.file.endsWith('/data'), 'the ISO is in the drive');
    const ejected = await act('bios', 'media', { action: 'eject' });
    assert.equal(ejected.cdrom, null);
    assert.equal((await cdrom('bios'))?.inserted, undefined, 'the drive is empty');
    const inserted = await act('bios', 'media', { action: 'insert', image: 'installer' });
    assert.equal(inserted.cdrom, 'installer');
    assert.ok((await cdrom('bios'))?.inserted, 'the medium is back');
    const bad = await t.admin.post('/api/vms/bios/media', { action: 'insert', image: 'nope' });
    assert.equal(bad.status, 404);
    await act('bios', 'force-stop');
  });

  test('UEFI: OVMF boots the ISO; the VM keeps its own variable store', async () => {
    const c = await t.admin.post('/api/vms', {
      // GRUB's EFI loader runs out of memory for this kernel at 256 MiB.
      name: 'uefi', cdrom: 'installer', diskBytes: 64 * MiB, memoryMiB: 512, firmware: 'uefi',
    });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    assert.equal(c.body.firmware, 'uefi');
    const vars = join(t.config.dataDir, 'vms', c.body.id, 'OVMF_VARS.fd');
    assert.equal(statSync(vars).size, statSync('/usr/share/OVMF/OVMF_VARS_4M.fd').size);
    await act('uefi', 'start');
    const log = await waitSerial('uefi', /ORIEL-READY/, 120_000);
    assert.match(log, /ORIEL-READY/);
    assert.ok(!readFileSync(vars).equals(readFileSync('/usr/share/OVMF/OVMF_VARS_4M.fd')),
      'OVMF wrote its boot entries to the VM\'s own store');
    await act('uefi', 'force-stop');
    const kernel = await t.admin.post('/api/vms', { name: 'uefik', image: 'tiny', firmware: 'uefi' });
    assert.equal(kernel.status, 400, 'a direct kernel boot has no firmware to choose');
  });

  test('a template: read-only, not started; its linked clone boots with its disk; a grown disk shows its size', async () => {
    assert.equal((await t.admin.post('/api/vms', { name: 'base', image: 'tiny', memoryMiB: 128 })).status, 201);
    await act('base', 'start');
    const w = await t.admin.post('/api/vms/base/exec', { argv: ['sh', '-c', 'echo template-mark > /dev/vda; sync'], timeoutSec: 90 });
    assert.equal(w.body.exitCode, 0, JSON.stringify(w.body));
    assert.equal((await t.admin.post('/api/vms/base/template')).status, 409, 'a running VM is no template');
    await act('base', 'force-stop');
    const tpl = await act('base', 'template');
    assert.equal(tpl.template, true);
    const start = await t.admin.post('/api/vms/base/start');
    assert.equal(start.status, 409);
    assert.match(start.body.message, /is a template/);

    const t0 = Date.now();
    const clone = await t.admin.post('/api/vms', { name: 'clone', from: 'base' });
    assert.equal(clone.status, 201, JSON.stringify(clone.body));
    assert.ok(Date.now() - t0 < 5000, 'a linked clone is made in seconds');
    assert.equal(clone.body.from, 'base');
    const cloneDisk = join(t.config.dataDir, 'vms', clone.body.id, 'disk.qcow2');
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', cloneDisk], { encoding: 'utf8' }));
    assert.equal(info['backing-filename'], join(t.config.dataDir, 'vms', tpl.id, 'disk.qcow2'));
    const del = await t.admin.delete('/api/vms/base');
    assert.equal(del.status, 409);
    assert.match(del.body.message, /linked clones use it \('clone'\)/);

    await act('clone', 'start');
    const r = await t.admin.post('/api/vms/clone/exec', { argv: ['head', '-c', '13', '/dev/vda'], timeoutSec: 90 });
    assert.equal(r.body.stdout, 'template-mark', "the clone sees the template's disk");
    const busy = await t.admin.post('/api/vms/clone/resize', { diskBytes: 96 * MiB });
    assert.equal(busy.status, 409, 'only a stopped VM is resized');
    await act('clone', 'force-stop');
    const shrink = await t.admin.post('/api/vms/clone/resize', { diskBytes: 32 * MiB });
    assert.equal(shrink.status, 400);
    assert.match(shrink.body.message, /only grow/);
    const grown = await act('clone', 'resize', { diskBytes: 96 * MiB });
    assert.equal(grown.diskBytes, 96 * MiB);
    await act('clone', 'start');
    const size = await t.admin.post('/api/vms/clone/exec', { argv: ['cat', '/sys/block/vda/size'], timeoutSec: 90 });
    assert.equal(size.body.stdout.trim(), String((96 * MiB) / 512), 'the guest sees the grown disk');
    const still = await t.admin.post('/api/vms/clone/exec', { argv: ['head', '-c', '13', '/dev/vda'], timeoutSec: 90 });
    assert.equal(still.body.stdout, 'template-mark');
    await act('clone', 'force-stop');
    assert.equal((await t.admin.delete('/api/vms/clone')).status, 204);
    assert.equal((await t.admin.delete('/api/vms/base')).status, 204, 'without clones the template goes');
    assert.ok(!existsSync(cloneDisk));
  });
});
