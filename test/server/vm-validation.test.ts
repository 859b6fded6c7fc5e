// Bad VM specs are refused with 400 and a message a person can act on; nothing is left behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('VM spec validation', () => {
  let t: TestServer;
  let scratch: string;
  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'ov-'));
    t = await startTestServer({ imagesDirs: [scratch] });
  });
  after(async () => {
    await t.destroy();
    rmSync(scratch, { recursive: true, force: true });
  });

  const refused = async (body: unknown, re: RegExp) => {
    const r = await t.admin.post('/api/vms', body);
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.message, re);
  };

  test('refuses bad names, memory, cpus, unknown images, missing files', async () => {
    await refused({ name: 'Bad Name', image: 'tiny' }, /name must be/);
    await refused({ name: 'ok', image: 'tiny', memoryMiB: 1 }, /memoryMiB: memory must be between 64 and \d+ MiB/);
    await refused({ name: 'ok', image: 'tiny', memoryMiB: 10_000_000 }, /memory must be between/);
    await refused({ name: 'ok', image: 'tiny', cpus: 0 }, /cpus must be between/);
    await refused({ name: 'ok', image: 'no-such-image' }, /unknown image 'no-such-image': known images are tiny/);
    await refused({ name: 'ok' }, /give an image, or a kernel and an initrd/);
    await refused({ name: 'ok', kernel: '/etc/hostname' }, /a kernel needs an initrd/);
    await refused({ name: 'ok', kernel: join(scratch, 'vmlinuz'), initrd: join(scratch, 'initrd') }, /this path cannot be used/);
    await refused({ name: 'ok', image: join(scratch, 'nope.qcow2') }, /this path cannot be used/);
    await refused({ name: 'ok', image: 'tiny', color: 'blue' }, /unrecognized key/i);
    await refused({ name: 'ok', image: 'tiny', memoryMiB: 'lots' }, /memoryMiB/);
    await refused({ name: 'ok', image: 'tiny', networks: 'lab' }, /networks must be a list of network names/);
    await refused({ name: 'ok', image: 'tiny', networks: [''] }, /networks must be a list of network names/);
    // The VM manager takes networks only as ids the server has checked (VmCreateOptions), never in the request.
    await assert.rejects(t.server.ctx.vms.create({ name: 'ok', image: 'tiny', networks: ['lab'] }, 'x'), /unrecognized key/i);
    assert.deepEqual((await t.admin.get('/api/vms')).body, []);
    assert.deepEqual(readdirSync(join(t.config.dataDir, 'vms')), [], 'no VM folder is left behind');
  });

  test('a corrupt qcow2 is refused with the reason', async () => {
    const disk = join(scratch, 'broken.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M']);
    // Point the L1 table far past the end of the file: the header stays valid, the metadata does not.
    const fd = openSync(disk, 'r+');
    const l1 = Buffer.alloc(8);
    l1.writeBigUInt64BE(0x7ffffffffe00n);
    writeSync(fd, l1, 0, 8, 40);
    closeSync(fd);
    const r = await t.admin.post('/api/vms', { name: 'broken', image: disk });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.message, /broken.qcow2/);
    const garbage = join(scratch, 'garbage.qcow2');
    writeFileSync(garbage, Buffer.concat([Buffer.from('QFI\xfb', 'latin1'), Buffer.alloc(100, 0xff)]));
    const g = await t.admin.post('/api/vms', { name: 'garbage', image: garbage });
    assert.equal(g.status, 400, JSON.stringify(g.body));
    assert.match(g.body.message, /garbage.qcow2 is not a usable disk image/);
  });

  test('a disk given by path gets an overlay; the base is never written', async () => {
    const base = join(scratch, 'base.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '32M']);
    const r = await t.admin.post('/api/vms', { name: 'from-path', image: base, memoryMiB: 128 });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const overlay = join(t.config.dataDir, 'vms', r.body.id, 'disk.qcow2');
    assert.ok(existsSync(overlay));
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', overlay], { encoding: 'utf8' }));
    assert.equal(info['backing-filename'], base);
    const dup = await t.admin.post('/api/vms', { name: 'from-path', image: base });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.message, "a VM named 'from-path' already exists");
    assert.equal((await t.admin.delete('/api/vms/from-path')).status, 204);
    assert.ok(!existsSync(overlay));
  });

  test('actions that do not fit the state get 409 with the reason', async () => {
    const base = join(scratch, 'base2.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '32M']);
    assert.equal((await t.admin.post('/api/vms', { name: 'idle', image: base })).status, 201);
    for (const a of ['stop', 'pause', 'resume', 'reset', 'force-stop']) {
      const r = await t.admin.post(`/api/vms/idle/${a}`);
      assert.equal(r.status, 409, a);
      assert.match(r.body.message, new RegExp(`cannot ${a} VM 'idle': it is stopped`));
    }
    assert.equal((await t.admin.post('/api/vms/nope/start')).status, 404);
  });
});

describe('QEMU missing from the system', () => {
  let t: TestServer;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ov-'));
    for (const f of ['vmlinuz', 'initrd']) writeFileSync(join(dir, f), 'not really a kernel');
    t = await startTestServer({ qemuBinary: '/nonexistent/qemu-system-x86_64', imagesDirs: [dir] });
  });
  after(async () => {
    await t.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test('start fails with a message that says what to install, and the VM stays usable', async () => {
    const spec = { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd') };
    assert.equal((await t.admin.post('/api/vms', { name: 'noqemu', ...spec })).status, 201);
    const r = await t.admin.post('/api/vms/noqemu/start');
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.match(
      r.body.message,
      /cannot run \/nonexistent\/qemu-system-x86_64: .*ENOENT.*is qemu-system-x86 installed/,
    );
    const vm = (await t.admin.get('/api/vms/noqemu')).body;
    assert.equal(vm.state, 'stopped');
    assert.match(vm.stateReason, /is qemu-system-x86 installed/);
    assert.equal((await t.admin.delete('/api/vms/noqemu')).status, 204);
  });
});
