// Per-user quotas and the per-user caps on event streams and console tickets, against a real server with tiny
// guests (64 MiB, TCG), plus the checkpoint store's owner-independent "new bytes" (deduplication must not tell one
// user whether another holds the same pages).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILTIN_QUOTA, parseQuotaSpec, parseSize } from '../../src/config.ts';
import { CheckpointStore, type Manifest } from '../../src/checkpoint/page-store/index.ts';
import type { ParsedStream } from '../../src/checkpoint/stream/index.ts';
import { MAX_TICKETS_PER_USER } from '../../src/server/console/tickets.ts';
import { MAX_EVENT_STREAMS_PER_USER } from '../../src/server/routes/events.ts';
import { ensureTinyImage } from '../helpers/images.ts';
import { ADMIN_PASSWORD, addUser, startTestServer, type Client, type TestServer } from '../helpers/server.ts';
import { ensureWebBuild, launchChromium, signIn } from '../web/helpers.ts';

const BIN = join(import.meta.dirname, '../../bin/oriel.js');
const MiB = 2 ** 20;

function oriel(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    p.stdin.end();
  });
}

describe('quotas', () => {
  let t: TestServer;
  let alice: Client;
  let bob: Client;
  let cfg: string;
  const tiny = (name: string, extra: Record<string, unknown> = {}) => ({ name, image: 'tiny', memoryMiB: 64, ...extra });
  const setQuota = (user: string, q: Record<string, unknown>) => t.admin.req('PUT', `/api/users/${user}/quota`, q);
  const forceStopAll = async (c: Client) => {
    for (const vm of (await c.get('/api/vms')).body) {
      if (!['stopped', 'crashed'].includes(vm.state)) await c.post(`/api/vms/${vm.name}/force-stop`);
    }
  };
  const deleteAll = async (c: Client) => {
    await forceStopAll(c);
    for (const vm of (await c.get('/api/vms')).body) assert.equal((await c.delete(`/api/vms/${vm.name}`)).status, 204);
  };

  before(async () => {
    await ensureTinyImage();
    cfg = mkdtempSync(join(tmpdir(), 'oq-cfg-'));
    t = await startTestServer();
    alice = await addUser(t, 'alice');
    bob = await addUser(t, 'bob');
  });
  after(async () => {
    await t?.destroy();
    rmSync(cfg, { recursive: true, force: true });
  });

  test('defaults: users get the configured quota, admins none; ORIEL_DEFAULT_QUOTA parses', async () => {
    const me = await alice.get('/api/me/quota');
    assert.equal(me.status, 200);
    assert.deepEqual(me.body.limits, BUILTIN_QUOTA);
    assert.equal(me.body.custom, false);
    assert.deepEqual(me.body.usage, { vms: 0, memoryMiB: 0, cpus: 0, diskBytes: 0, checkpointBytes: 0 });
    const adm = await t.admin.get('/api/me/quota');
    const none = { vms: null, memoryMiB: null, cpus: null, diskBytes: null, checkpointBytes: null };
    assert.deepEqual(adm.body.limits, none);
    assert.deepEqual(parseQuotaSpec('vms=3, memory=2048,disk=20G,checkpoints=unlimited'), {
      ...BUILTIN_QUOTA, vms: 3, memoryMiB: 2048, diskBytes: 20 * 2 ** 30, checkpointBytes: null,
    });
    assert.throws(() => parseQuotaSpec('ram=5'), /key one of vms, memory/);
    assert.throws(() => parseQuotaSpec('disk=lots'), /not a size/);
    assert.equal(parseSize('1.5GiB'), 1.5 * 2 ** 30);
    const spec = (await t.admin.get('/api/openapi.json')).body;
    assert.ok(spec.paths['/api/me/quota']?.get && spec.paths['/api/users/{name}/quota']?.put, 'quota routes documented');
  });

  test('only admins set quotas: a user cannot set their own (403) nor read another', async () => {
    const own = await alice.req('PUT', '/api/users/alice/quota', { memoryMiB: 999_999 });
    assert.equal(own.status, 403, JSON.stringify(own.body));
    assert.equal((await alice.delete('/api/users/alice/quota')).status, 403);
    assert.equal((await alice.get('/api/users/bob/quota')).status, 403);
    assert.equal((await alice.get('/api/users/alice/quota')).status, 200);
    assert.equal((await alice.get('/api/me/quota')).body.limits.memoryMiB, BUILTIN_QUOTA.memoryMiB);
    const bad = await setQuota('alice', { memoryMiB: -1 });
    assert.equal(bad.status, 400);
    assert.equal((await setQuota('alice', { ram: 5 })).status, 400, 'unknown fields are refused');
    assert.equal((await setQuota('nobody', { vms: 1 })).status, 404);
  });

  test('VM count and provisioned disk are refused at create, with the limit and the usage', async () => {
    const disk = (await ensureTinyImage()).disk!;
    assert.ok(disk);
    const set = await setQuota('alice', { vms: 2, diskBytes: null });
    assert.equal(set.status, 200);
    assert.equal(set.body.custom, true);
    assert.equal((await alice.post('/api/vms', tiny('a1'))).status, 201);
    const a1 = (await alice.get('/api/me/quota')).body.usage.diskBytes;
    assert.ok(a1 >= 16 * MiB, `the tiny disk's provisioned size counts: ${a1}`);
    assert.equal((await alice.post('/api/vms', tiny('a2'))).status, 201);
    const third = await alice.post('/api/vms', tiny('a3'));
    assert.equal(third.status, 403);
    assert.equal(third.body.error, 'quota_exceeded');
    assert.equal(third.body.message, 'quota: VMs would be 3 of 2 allowed');
    // Disk: room for one more disk's worth minus a byte.
    await setQuota('alice', { vms: 10, diskBytes: 3 * a1 - 1 });
    const d = await alice.post('/api/vms', tiny('a3'));
    assert.equal(d.status, 403);
    assert.match(d.body.message, /^quota: disk would be [\d.]+ MiB of [\d.]+ MiB allowed \(provisioned size/);
    assert.deepEqual((await alice.get('/api/vms')).body.map((v: { name: string }) => v.name), ['a1', 'a2'],
      'a refused VM leaves nothing behind');
    await deleteAll(alice);
  });

  test('running memory and vCPUs are refused at start; parallel starts never exceed the limit', async () => {
    await setQuota('alice', { vms: 10, diskBytes: null, memoryMiB: 128, cpus: 2 });
    for (const n of ['m1', 'm2', 'm3']) assert.equal((await alice.post('/api/vms', tiny(n))).status, 201);
    const starts = await Promise.all(['m1', 'm2', 'm3'].map((n) => alice.post(`/api/vms/${n}/start`)));
    const ok = starts.filter((r) => r.status === 200);
    const refused = starts.filter((r) => r.status === 403);
    assert.equal(ok.length, 2, JSON.stringify(starts.map((s) => s.body)));
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.body.message, 'quota: running memory would be 192 MiB of 128 MiB allowed');
    const u = (await alice.get('/api/me/quota')).body.usage;
    assert.equal(u.memoryMiB, 128);
    assert.equal(u.cpus, 2);
    // A paused VM keeps its memory: still counted.
    const running = ok[0]!.body.name as string;
    assert.equal((await alice.post(`/api/vms/${running}/pause`)).status, 200);
    assert.equal((await alice.get('/api/me/quota')).body.usage.memoryMiB, 128);
    assert.equal((await alice.post(`/api/vms/${running}/resume`)).status, 200);
    await forceStopAll(alice);
    // vCPUs: a 2-vCPU VM fits alone, not beside a 1-vCPU one.
    await setQuota('alice', { memoryMiB: null, cpus: 2 });
    assert.equal((await alice.post('/api/vms', tiny('c2', { cpus: 2 }))).status, 201);
    assert.equal((await alice.post('/api/vms/m1/start')).status, 200);
    const c = await alice.post('/api/vms/c2/start');
    assert.equal(c.status, 403);
    assert.equal(c.body.message, 'quota: running vCPUs would be 3 of 2 allowed');
    await forceStopAll(alice);
    // An OpenCL window is host memory the guest can fill: it counts as running memory.
    await setQuota('alice', { memoryMiB: 512, cpus: null });
    const w = await alice.post('/api/vms', tiny('cl', { opencl: true, openclWindowMiB: 512 }));
    assert.equal(w.status, 201, JSON.stringify(w.body));
    const s = await alice.post('/api/vms/cl/start');
    assert.equal(s.status, 403, JSON.stringify(s.body));
    assert.equal(s.body.message, 'quota: running memory would be 576 MiB of 512 MiB allowed');
    await deleteAll(alice);
  });

  test('checkpoints: refused once the storage quota is used, manual and scheduled; restore-as counts too', async () => {
    await setQuota('alice', { vms: 1, memoryMiB: 128, cpus: 2, checkpointBytes: null, diskBytes: null });
    assert.equal((await alice.post('/api/vms', tiny('k1'))).status, 201);
    assert.equal((await alice.post('/api/vms/k1/start')).status, 200);
    const op = await alice.post('/api/vms/k1/checkpoints', {});
    assert.equal(op.status, 202, JSON.stringify(op.body));
    // One capture of a VM at a time: queued ones would all pass the storage check before the first is counted.
    const second = await alice.post('/api/vms/k1/checkpoints', {});
    assert.equal(second.status, 409, JSON.stringify(second.body));
    assert.match(second.body.message, /already being taken/);
    const done = await alice.get(`/api/operations/${op.body.id}/wait?timeoutSec=120`);
    assert.equal(done.body.status, 'succeeded', JSON.stringify(done.body));
    const [cp] = (await alice.get('/api/vms/k1/checkpoints')).body;
    const m = t.server.ctx.checkpoints.show(cp.id);
    assert.equal(cp.newBytes, m.stats.ownBytes, 'users see the owner-independent figure');
    const used = (await alice.get('/api/me/quota')).body.usage.checkpointBytes;
    // The RAM this checkpoint holds (all its own: it is the VM's first) plus its disk image's allocated space.
    const shown = cp.newBytes + cp.diskBytes;
    assert.ok(Math.abs(used - shown) <= 0.02 * shown + 2 ** 20, `${used} for ${JSON.stringify(cp)}`);
    // Restore as a new VM: over the VM count.
    const ra = await alice.post(`/api/vms/k1/checkpoints/${cp.id}/restore`, { as: 'k2' });
    assert.equal(ra.status, 403);
    assert.equal(ra.body.message, 'quota: VMs would be 2 of 1 allowed');
    await setQuota('alice', { checkpointBytes: used });
    const again = await alice.post('/api/vms/k1/checkpoints', {});
    assert.equal(again.status, 403);
    assert.match(again.body.message, /^quota: checkpoint storage is [\d.]+ [KM]iB of [\d.]+ [KM]iB allowed/);
    // A scheduled run over the quota fails with the same message in its operation and the schedule's last error.
    const s = await alice.req('PUT', '/api/vms/k1/checkpoint-schedule', { every: '2s', keepLast: 3 });
    assert.equal(s.status, 200, JSON.stringify(s.body));
    let lastError: string | null = null;
    for (let i = 0; i < 100 && !lastError; i++) {
      await new Promise((r) => setTimeout(r, 200));
      lastError = (await alice.get('/api/vms/k1/checkpoint-schedule')).body.lastError;
    }
    assert.equal((await alice.delete('/api/vms/k1/checkpoint-schedule')).status, 204);
    assert.match(lastError ?? '', /^quota: checkpoint storage is/);
    const ops = (await alice.get('/api/operations')).body as { kind: string; status: string; error: string | null }[];
    assert.ok(ops.some((o) => o.kind === 'checkpoint.create' && o.status === 'failed' && /^quota:/.test(o.error ?? '')));
    assert.equal((await alice.get('/api/vms/k1/checkpoints')).body.length, 1, 'no checkpoint was taken over quota');
    assert.equal((await t.anon.get('/api/health')).status, 200);

    // Deleting a parent does not hide what its child still holds: usage counts the objects the remaining
    // checkpoints name, not each one's difference over a parent that is gone.
    await setQuota('alice', { checkpointBytes: null });
    const op2 = await alice.post('/api/vms/k1/checkpoints', {});
    assert.equal((await alice.get(`/api/operations/${op2.body.id}/wait?timeoutSec=120`)).body.status, 'succeeded');
    const child = (await alice.get('/api/vms/k1/checkpoints')).body.find((c: { id: string }) => c.id !== cp.id);
    const before = (await alice.get('/api/me/quota')).body.usage.checkpointBytes as number;
    assert.equal((await alice.delete(`/api/vms/k1/checkpoints/${cp.id}`)).status, 204);
    const afterDelete = (await alice.get('/api/me/quota')).body.usage.checkpointBytes as number;
    assert.ok(child.newBytes < 0.5 * used, `the child's own delta (${child.newBytes}) is small beside ${used}`);
    assert.ok(afterDelete >= 0.8 * used, `after deleting the parent: ${afterDelete} of ${before} (first alone: ${used})`);
    await forceStopAll(alice);
    await deleteAll(alice);
  });

  test('CLI: an admin sets and shows a quota; a user cannot set one', async () => {
    const env = { ORIEL_URL: t.url, ORIEL_TOKEN: t.adminToken, XDG_CONFIG_HOME: cfg };
    const set = await oriel(['user', 'quota', 'bob', '--memory', '256', '--disk', '1G', '--vms', 'unlimited'], env);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /running memory\s+0 MiB\s+256 MiB/);
    const q = (await bob.get('/api/me/quota')).body;
    assert.equal(q.limits.memoryMiB, 256);
    assert.equal(q.limits.diskBytes, 2 ** 30);
    assert.equal(q.limits.vms, null);
    const json = await oriel(['user', 'quota', 'bob', '--json'], env);
    assert.equal(JSON.parse(json.stdout).limits.memoryMiB, 256);
    const mine = await oriel(['user', 'quota'], { ...env, ORIEL_TOKEN: bob.token });
    assert.equal(mine.code, 0, mine.stderr);
    assert.match(mine.stdout, /quota of bob/);
    const refused = await oriel(['user', 'quota', 'bob', '--memory', '99999'], { ...env, ORIEL_TOKEN: bob.token });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /admin/);
    const bad = await oriel(['user', 'quota', 'bob', '--disk', 'huge'], env);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--disk must be a size/);
    const reset = await oriel(['user', 'quota', 'bob', '--reset'], env);
    assert.equal(reset.code, 0, reset.stderr);
    assert.equal((await bob.get('/api/me/quota')).body.custom, false);
  });

  test('web UI: an admin edits a quota on the Users page; a user sees usage against limits', async () => {
    ensureWebBuild();
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await signIn(page, t.url, 'admin', ADMIN_PASSWORD, '/users');
      await page.click('#user-bob-quota');
      await page.fill('#quota-bob-memoryMiB', '384');
      await page.fill('#quota-bob-diskBytes', '2');
      await page.fill('#quota-bob-vms', '');
      await page.click('#quota-bob-save');
      const want = { memoryMiB: 384, diskBytes: 2 * 2 ** 30, vms: null };
      let got: Record<string, unknown> = {};
      for (let i = 0; i < 50; i++) {
        got = (await bob.get('/api/me/quota')).body.limits;
        if (got.memoryMiB === 384) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual({ memoryMiB: got.memoryMiB, diskBytes: got.diskBytes, vms: got.vms }, want);
      // The row shows the new limit once the page has reloaded the list after saving.
      await page.waitForSelector('#user-bob-row:has-text("0 MiB / 384 MiB")', { timeout: 10_000 });
      const bp = await browser.newPage();
      await signIn(bp, t.url, 'bob', 'bob-password');
      await bp.waitForSelector('#quota-summary');
      assert.match((await bp.textContent('#quota-memoryMiB'))!, /0 MiB of 384 MiB running memory/);
      assert.equal(await bp.$('#nav-users'), null, 'no Users link for ordinary users');
    } finally {
      await browser.close();
    }
  });

  test(`event streams are capped per user (${MAX_EVENT_STREAMS_PER_USER}) with a 429`, async () => {
    const open: AbortController[] = [];
    const stream = async (c: Client) => {
      const ac = new AbortController();
      const res = await fetch(`${t.url}/api/events`, { headers: { authorization: `Bearer ${c.token}` }, signal: ac.signal });
      if (res.status === 200) open.push(ac);
      else await res.text();
      return res;
    };
    try {
      for (let i = 0; i < MAX_EVENT_STREAMS_PER_USER; i++) assert.equal((await stream(alice)).status, 200);
      const over = await stream(alice);
      assert.equal(over.status, 429);
      assert.equal((await stream(bob)).status, 200, 'another user is not affected');
      open.shift()!.abort();
      let status = 0;
      for (let i = 0; i < 50 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 50));
        status = (await stream(alice)).status;
      }
      assert.equal(status, 200, 'a closed stream frees its place');
    } finally {
      for (const ac of open) ac.abort();
    }
  });

  test(`unredeemed console tickets are capped per user (${MAX_TICKETS_PER_USER}) with a 429`, async () => {
    await setQuota('alice', { vms: 10 });
    assert.equal((await alice.post('/api/vms', tiny('tk'))).status, 201);
    for (let i = 0; i < MAX_TICKETS_PER_USER; i++)
      assert.equal((await alice.post('/api/vms/tk/console-ticket', {})).status, 201);
    const over = await alice.post('/api/vms/tk/console-ticket', {});
    assert.equal(over.status, 429);
    assert.match(over.body.message, /too many unused console tickets/);
    assert.equal((await t.admin.post('/api/vms/tk/console-ticket', {})).status, 201, 'per user');
    await deleteAll(alice);
  });
});

describe('checkpoint dedup tells no owner about another', () => {
  const PAGES = 300;
  const pages = Array.from({ length: PAGES }, (_, i) =>
    i % 3 === 0 ? randomBytes(4096) : Buffer.alloc(4096, `page ${i} `));
  const parsed = (): ParsedStream => ({
    header: Buffer.from('QEVM header'), machine: 'pc-q35-7.2', ramSectionId: 2,
    blocks: [{ id: 'pc.ram', length: PAGES * 4096 }], deviceState: Buffer.from('devices'), vmdesc: Buffer.alloc(0),
    stats: { bytes: PAGES * 4096, pageRecords: PAGES, zeroRecords: 0, ramSections: 1, sawEnd: true },
  });
  const write = async (store: CheckpointStore, id: string, vmId: string, extra: Buffer): Promise<Manifest> => {
    const w = await store.beginCheckpoint();
    w.blocks(parsed().blocks);
    pages.forEach((p, i) => w.page(0, i, i === 0 ? extra : p));
    return w.finish(parsed(), {
      id, vmId, vmName: vmId, createdAt: new Date().toISOString(), parent: null, kind: 'manual',
      qemu: { version: '7.2' }, spec: {}, wasRunning: true, guestReady: true, disks: [],
      stats: { pauseMs: null, durationMs: 0 },
    });
  };

  test("user B's checkpoint shows the same new bytes whether or not user A stored the same pages", async () => {
    const shared = mkdtempSync(join(tmpdir(), 'oq-s-'));
    const alone = mkdtempSync(join(tmpdir(), 'oq-a-'));
    const s1 = new CheckpointStore(shared);
    const s2 = new CheckpointStore(alone);
    try {
      const own = randomBytes(4096);
      const a = await write(s1, 'ca', 'vm-a', randomBytes(4096));
      const bWithA = await write(s1, 'cb', 'vm-b', own);
      const bAlone = await write(s2, 'cb', 'vm-b', own);
      assert.ok(bWithA.stats.newBytes < bAlone.stats.newBytes / 10,
        `the store did deduplicate: ${bWithA.stats.newBytes} vs ${bAlone.stats.newBytes}`);
      assert.equal(bWithA.stats.ownBytes, bAlone.stats.ownBytes, 'what B is shown does not depend on A');
      assert.equal(bAlone.stats.ownBytes, bAlone.stats.newBytes, 'alone, it is what was written');
      assert.equal(a.stats.ownBytes, a.stats.newBytes);
    } finally {
      s1.close();
      s2.close();
      rmSync(shared, { recursive: true, force: true });
      rmSync(alone, { recursive: true, force: true });
    }
  });
});
