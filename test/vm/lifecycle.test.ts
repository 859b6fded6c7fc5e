// Every lifecycle transition of a real QEMU guest (the tiny image, TCG), driven through the HTTP API.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { ensureTinyImage } from '../helpers/images.ts';
import { isAlive } from '../../src/host/process.ts';

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('VM lifecycle on real QEMU', () => {
  let t: TestServer;
  const state = async (name = 'life') => (await t.admin.get(`/api/vms/${name}`)).body;
  const exec = (argv: string[], name = 'life') => t.admin.post(`/api/vms/${name}/exec`, { argv, timeoutSec: 90 });

  before(async () => {
    await ensureTinyImage();
    t = await startTestServer();
  });
  after(async () => { await t.destroy(); });

  test('create and start the tiny guest, run commands in it', async () => {
    const c = await t.admin.post('/api/vms', { name: 'life', image: 'tiny', memoryMiB: 192 });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    assert.equal(c.body.state, 'stopped');
    const s = await t.admin.post('/api/vms/life/start');
    assert.equal(s.status, 200, JSON.stringify(s.body));
    assert.equal(s.body.state, 'running');
    assert.ok(isAlive(s.body.pid));
    const r = await exec(['uname', '-s']);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, { stdout: 'Linux\n', stderr: '', exitCode: 0 });
    const f = await exec(['sh', '-c', 'echo oops >&2; exit 7']);
    assert.deepEqual(f.body, { stdout: '', stderr: 'oops\n', exitCode: 7 });
    // The guest has the RAM the spec asked for: 192 MiB less what firmware, kernel and initramfs keep (256 MiB
    // would show over 200 000 KiB; the default 256 MiB is what a wrong -m would give).
    const mem = await exec(['sh', '-c', "awk '/MemTotal/ {print $2}' /proc/meminfo"]);
    const kib = Number(mem.body.stdout);
    assert.ok(kib > 120_000 && kib <= 192 * 1024 - 40_000, `MemTotal ${kib} KiB`);
    const log = await t.admin.get('/api/vms/life/log');
    assert.match(log.body.text, /ORIEL-READY/);
  });

  test('a second start is refused while running', async () => {
    const r = await t.admin.post('/api/vms/life/start');
    assert.equal(r.status, 409);
    assert.match(r.body.message, /it is running/);
  });

  test('pause stops the guest clock, resume continues it', async () => {
    const p = await t.admin.post('/api/vms/life/pause');
    assert.equal(p.body.state, 'paused');
    const status = await t.server.ctx.vms.qmp('life').queryStatus();
    assert.equal(status.status, 'paused');
    assert.equal((await t.admin.post('/api/vms/life/exec', { argv: ['true'] })).status, 409);
    const r = await t.admin.post('/api/vms/life/resume');
    assert.equal(r.body.state, 'running');
    assert.equal((await exec(['true'])).body.exitCode, 0);
  });

  test('reset reboots the guest (its uptime starts again)', async () => {
    await exec(['sh', '-c', 'echo before-reset > /dev/vda']);
    const up1 = Number((await exec(['cut', '-d.', '-f1', '/proc/uptime'])).body.stdout);
    const pidBefore = (await state()).pid;
    assert.equal((await t.admin.post('/api/vms/life/reset')).body.state, 'running');
    await until(
      'guest to boot again',
      async () =>
        readFileSync(join(t.config.dataDir, 'vms', (await state()).id, 'serial.log'), 'utf8').split('ORIEL-READY')
          .length > 2,
      60_000,
    );
    const r = await exec(['cut', '-d.', '-f1', '/proc/uptime']);
    assert.equal(r.body.exitCode, 0);
    assert.ok(Number(r.body.stdout) <= up1 + 60, 'uptime restarted');
    assert.equal((await state()).pid, pidBefore, 'same QEMU process');
    const disk = await exec(['head', '-c', '12', '/dev/vda']);
    assert.equal(disk.body.stdout, 'before-reset', 'the disk keeps what was written');
  });

  test('stop: the guest powers off through ACPI', async () => {
    const pid = (await state()).pid;
    const r = await t.admin.post('/api/vms/life/stop', { timeoutSec: 60 });
    assert.equal(r.status, 200);
    assert.equal(r.body.state, 'stopped');
    assert.equal(r.body.stateReason, null, 'stopped cleanly, not forced');
    assert.ok(!isAlive(pid));
  });

  test('the disk overlay keeps its data across restarts', async () => {
    assert.equal((await t.admin.post('/api/vms/life/start')).body.state, 'running');
    assert.equal((await exec(['head', '-c', '12', '/dev/vda'])).body.stdout, 'before-reset');
  });

  test('force-stop ends QEMU at once', async () => {
    const pid = (await state()).pid;
    const r = await t.admin.post('/api/vms/life/force-stop');
    assert.equal(r.body.state, 'stopped');
    assert.ok(!isAlive(pid));
  });

  test('stop falls back to force when the guest ignores the power button', async () => {
    await t.admin.post('/api/vms/life/start');
    await exec(['sh', '-c', 'killall acpid; true']);
    const r = await t.admin.post('/api/vms/life/stop', { timeoutSec: 2 });
    assert.equal(r.body.state, 'stopped');
    assert.match(r.body.stateReason, /did not power off within 2 s/);
  });

  test('QEMU killed with SIGKILL is shown as crashed with the tail of its log', async () => {
    await t.admin.post('/api/vms/life/start');
    const { pid, id } = await state();
    process.kill(pid, 'SIGKILL');
    const vm = await until(
      'crashed state',
      async () => {
        const v = await state();
        return v.state === 'crashed' && v;
      },
      10_000,
    );
    assert.match(vm.stateReason, /QEMU \(pid \d+\) killed by SIGKILL unexpectedly/);
    assert.match(vm.stateReason, /starting QEMU/, 'includes the log tail');
    assert.equal(vm.pid, null);
    assert.ok(!existsSync(join(t.config.dataDir, 'vms', id, 'qemu.pid')));
    // A crashed VM starts again.
    assert.equal((await t.admin.post('/api/vms/life/start')).body.state, 'running');
  });

  test('a server restart re-attaches the running VM; a VM that died meanwhile shows as crashed', async () => {
    const before = await state();
    assert.equal(before.state, 'running');
    await t.stop();
    assert.ok(isAlive(before.pid), 'QEMU outlives the server');
    await t.restart();
    const after = await state();
    assert.equal(after.state, 'running');
    assert.equal(after.pid, before.pid);
    assert.equal((await exec(['echo', 'still here'])).body.stdout, 'still here\n');
    // Kill QEMU while no server watches it.
    await t.stop();
    process.kill(before.pid, 'SIGKILL');
    await until('QEMU to die', async () => !isAlive(before.pid), 5000);
    await t.restart();
    const dead = await state();
    assert.equal(dead.state, 'crashed');
    assert.match(dead.stateReason, /no longer running when Oriel started/);
  });

  test('a stale pidfile does not block a start', async () => {
    const { id } = await state();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(t.config.dataDir, 'vms', id, 'qemu.pid'), `${process.pid}\n`); // alive, but not our QEMU
    const r = await t.admin.post('/api/vms/life/start');
    assert.equal(r.body.state, 'running', JSON.stringify(r.body));
    assert.notEqual(r.body.pid, process.pid);
  });

  test('delete needs a stopped VM, then removes everything', async () => {
    assert.equal((await t.admin.delete('/api/vms/life')).status, 409);
    const { id } = await state();
    await t.admin.post('/api/vms/life/force-stop');
    assert.equal((await t.admin.delete('/api/vms/life')).status, 204);
    assert.equal((await t.admin.get('/api/vms/life')).status, 404);
    assert.ok(!existsSync(join(t.config.dataDir, 'vms', id)));
  });
});
