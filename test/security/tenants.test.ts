// The adversarial suite: what an anonymous client, a second ordinary user and a hostile guest try against a real
// server, each a finding of the security review that once worked. A tiny guest is booted for the console and exec
// cases (seconds).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { MAX_CONSOLES_PER_USER } from '../../src/server/console/limits.ts';
import { ensureTinyImage } from '../helpers/images.ts';
import { addUser, startTestServer, type Client, type TestServer } from '../helpers/server.ts';

/** Sends raw bytes to the server and returns what it answered (until it closes, or 3 s). */
function rawHttp(url: string, request: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const sock = connect(Number(port), hostname);
    let got = '';
    const done = () => (sock.destroy(), resolve(got));
    sock.setTimeout(3000, done);
    sock.on('data', (d) => (got += d.toString('latin1')));
    sock.on('close', done);
    sock.on('error', done);
    sock.write(request);
  });
}

const upgradeRequest = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
  + 'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

/** Opens a WebSocket and reports how it ended: refused at the upgrade (status) or closed later (code, after ms). */
type WsEnd = { status?: number; code?: number; ms: number };
function openWs(url: string, headers: Record<string, string> = {}): Promise<WsEnd> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode, ms: Date.now() - t0 }));
    ws.on('close', (code) => resolve({ code, ms: Date.now() - t0 }));
    ws.on('error', () => undefined);
  });
}

describe('security: a second user, anonymous clients, a hostile guest', () => {
  let t: TestServer;
  let images: string;
  let outside: string;
  let alice: Client;
  let bob: Client;
  let wsBase: string;

  before(async () => {
    await ensureTinyImage();
    images = mkdtempSync(join(tmpdir(), 'osec-img-'));
    outside = mkdtempSync(join(tmpdir(), 'osec-out-'));
    t = await startTestServer({ imagesDirs: [images] });
    alice = await addUser(t, 'alice');
    bob = await addUser(t, 'bob');
    wsBase = t.url.replace('http', 'ws');
  });
  after(async () => {
    await t?.destroy();
    rmSync(images, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  test('an ordinary user names no host file: the same refusal for the database, a missing file, a kernel', async () => {
    const db = join(t.config.dataDir, 'oriel.db');
    const answers = [];
    for (const body of [
      { name: 'steal-db', image: db },
      { name: 'steal-shadow', image: '/etc/shadow' },
      { name: 'probe', image: '/no/such/file.qcow2' },
      { name: 'in-library', image: join(images, 'whatever.qcow2') },
      { name: 'kern', kernel: '/etc/hostname', initrd: '/etc/hostname' },
    ]) {
      const r = await alice.post('/api/vms', body);
      assert.equal(r.status, 400, `${body.name}: ${JSON.stringify(r.body)}`);
      answers.push(JSON.stringify(r.body));
    }
    assert.equal(new Set(answers).size, 1, `one answer for every refused path, whether or not it exists: ${answers.join('\n')}`);
    assert.match(answers[0]!, /path_refused/);
    assert.deepEqual((await alice.get('/api/vms')).body, []);
  });

  test('an admin names files only inside the image folders: no way out by symlink, no backing file, format pinned', async () => {
    const refusal = (await alice.post('/api/vms', { name: 'x', image: '/etc/shadow' })).body;
    // Outside the folders, through a symlink inside them, a folder, a name with no known format: the same answer.
    const secret = join(outside, 'secret.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', secret, '16M']);
    symlinkSync(secret, join(images, 'link.qcow2'));
    mkdirSync(join(images, 'dir.qcow2'));
    writeFileSync(join(images, 'notes.txt'), 'hello');
    for (const image of [secret, join(images, 'link.qcow2'), join(images, 'dir.qcow2'), join(images, 'notes.txt'), join(images, '..', 'x.qcow2')]) {
      const r = await t.admin.post('/api/vms', { name: 'adm', image });
      assert.equal(r.status, 400, image);
      assert.deepEqual(r.body, refusal, image);
    }
    // A qcow2 inside the folder whose backing file is outside: QEMU would open it for the guest.
    const child = join(images, 'child.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', secret, child]);
    const b = await t.admin.post('/api/vms', { name: 'adm', image: child });
    assert.equal(b.status, 400);
    assert.match(b.body.message, /backing or data file/);
    // A "raw" disk whose bytes are a qcow2 header naming a backing file: used as raw, never probed.
    const disguised = join(images, 'disguised.raw');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', secret, disguised]);
    const d = await t.admin.post('/api/vms', { name: 'disguised', image: disguised });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    const overlay = join(t.config.dataDir, 'vms', d.body.id, 'disk.qcow2');
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', '--backing-chain', overlay], { encoding: 'utf8' }));
    assert.equal(info.length, 2, 'overlay + the raw base, nothing behind it');
    assert.equal(info[0]['backing-filename-format'], 'raw');
    assert.equal(info[1].format, 'raw');
    assert.equal((await t.admin.delete('/api/vms/disguised')).status, 204);
    // Accepted once, then swapped for a symlink to a file outside: the next start refuses it.
    const swapped = join(images, 'swapped.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', swapped, '16M']);
    assert.equal((await t.admin.post('/api/vms', { name: 'swapped', image: swapped })).status, 201);
    rmSync(swapped);
    symlinkSync(secret, swapped);
    const s = await t.admin.post('/api/vms/swapped/start');
    assert.equal(s.status, 422, JSON.stringify(s.body));
    assert.match(s.body.message, /no longer allowed/);
    assert.equal((await t.admin.delete('/api/vms/swapped')).status, 204);
  });

  test('no request of any shape stops the server: malformed upgrades, inherited names, bad escapes', async () => {
    for (const path of ['//[', '/api/vms/x/constructor', '/api/vms/x/__proto__', '/api/vms/%E0%A4%A/spice', '/api/vms/%/serial', '*']) {
      const answer = await rawHttp(t.url, upgradeRequest(path));
      assert.match(answer, /^HTTP\/1\.1 4\d\d /, `${path}: ${answer.slice(0, 80)}`);
    }
    assert.match(await rawHttp(t.url, 'GET //[ HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 4\d\d /);
    assert.equal((await t.anon.get('/api/health')).status, 200, 'still serving');
    // Names that an object inherits are no images.
    for (const image of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const r = await t.admin.post('/api/vms', { name: 'inherit', image });
      assert.equal(r.status, 400, `${image}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.message, /unknown image/);
      assert.equal((await t.admin.post(`/api/images/${image}/build`)).status, 404, image);
    }
  });

  test('the auth check judges the decoded path: /%61pi/... is /api/...', async () => {
    for (const p of ['/%61pi/openapi.json', '/%61pi/vms', '/api/%76ms', '/%61pi/users']) {
      const r = await t.anon.get(p);
      assert.ok(r.status === 401 || r.status === 404, `${p}: ${r.status}`);
      assert.ok(!JSON.stringify(r.body ?? '').includes('openapi'), `${p} leaks the API document`);
    }
    assert.equal((await t.anon.get('/%61pi/openapi.json')).status, 401);
  });

  test("a VM name shaped like another user's VM id is refused; ids and names never mix", async () => {
    const bobs = await bob.post('/api/vms', { name: 'bob-vm', image: 'tiny' });
    assert.equal(bobs.status, 201);
    const id = bobs.body.id as string;
    assert.match(id, /^[0-9a-f]{12}$/);
    const squat = await alice.post('/api/vms', { name: id, image: 'tiny' });
    assert.equal(squat.status, 400);
    assert.match(squat.body.message, /12 hexadecimal digits/);
    assert.equal((await alice.post(`/api/vms/${id}/start`)).status, 403, "bob's VM by id stays bob's");
    assert.equal((await bob.get(`/api/vms/${id}`)).body.name, 'bob-vm');
    assert.equal((await bob.get('/api/vms/bob-vm')).body.id, id);
    const restored = await t.server.ctx.vms.createLike(id, id.replace(/./, 'f'), 'x').catch((e: Error) => e);
    assert.ok(restored instanceof Error, 'a restore as a new VM refuses an id-shaped name too');
    assert.equal((await bob.delete('/api/vms/bob-vm')).status, 204);
  });

  test('schedules cannot run every second through cron; verifying the whole store is for admins', async () => {
    assert.equal((await alice.post('/api/vms', { name: 'alice-vm', image: 'tiny' })).status, 201);
    const put = await alice.req('PUT', '/api/vms/alice-vm/checkpoint-schedule', { every: '* * * * * *', keepLast: 1 });
    assert.equal(put.status, 400, JSON.stringify(put.body));
    assert.match(put.body.message, /at least 2s apart/);
    assert.equal((await alice.post('/api/vms/alice-vm/checkpoints/verify', {})).status, 403);
    assert.equal((await alice.delete('/api/vms/alice-vm')).status, 204);
  });

  test('password guessing: 429 with Retry-After after five failures, parallel guesses counted', async () => {
    const guess = (username: string, password: string) => t.anon.post('/api/auth/login', { username, password });
    // Sent all at once: each counts before its password is checked, so no more than five are ever checked.
    const burst = await Promise.all(Array.from({ length: 12 }, (_, i) => guess('alice', `wrong-${i}`)));
    assert.equal(burst.filter((r) => r.status === 401).length, 5, burst.map((r) => r.status).join(' '));
    assert.equal(burst.filter((r) => r.status === 429).length, 7);
    const blocked = await guess('alice', 'alice-password');
    assert.equal(blocked.status, 429, 'even the right password waits, from this address');
    assert.ok(Number(blocked.headers.get('retry-after')) >= 1);
    assert.equal((await guess('bob', 'bob-password')).status, 200, 'another account from the same address is not locked');
    // A flood of sign-ins is answered (refused), never queued without bound; the server goes on.
    const flood = await Promise.all(Array.from({ length: 200 }, (_, i) => guess(`nobody-${i}`, 'x')));
    assert.ok(flood.every((r) => [401, 429, 503].includes(r.status)));
    assert.equal((await t.anon.get('/api/health')).status, 200);
    assert.equal((await alice.get('/api/auth/me')).status, 200, 'tokens already issued still work');
  });

  describe('with a running guest', () => {
    before(async () => {
      assert.equal((await alice.post('/api/vms', { name: 'run', image: 'tiny', memoryMiB: 128 })).status, 201);
      assert.equal((await alice.post('/api/vms/run/start')).status, 200);
      await t.server.ctx.vms.waitReady('run', 120_000);
    });

    test('console WebSockets: a made-up ticket gets no upgrade; a silent client is closed after 5 s', async () => {
      const made = await openWs(`${wsBase}/api/vms/run/spice?ticket=made-up`);
      assert.equal(made.status, 401);
      const bobTicket = await bob.post('/api/vms/run/console-ticket');
      assert.equal(bobTicket.status, 403, "bob gets no ticket for alice's VM");
      const silent = await openWs(`${wsBase}/api/vms/run/spice`, { authorization: `Bearer ${alice.token}` });
      assert.equal(silent.code, 1008);
      assert.ok(silent.ms >= 4500 && silent.ms < 8000, `closed after ${silent.ms} ms`);
    });

    test("the console's screen picture (QEMU's screendump) is the owner's only; off when the server says so", async () => {
      const get = (who: Client | undefined, vm = 'run') => fetch(`${t.url}/api/vms/${vm}/console/screen`,
        { headers: who ? { authorization: `Bearer ${who.token}` } : {} });
      const own = await get(alice);
      assert.equal(own.status, 200);
      assert.equal(own.headers.get('content-type'), 'image/png');
      assert.equal(own.headers.get('cross-origin-resource-policy'), 'same-origin');
      assert.equal(own.headers.get('cache-control'), 'no-store');
      const png = Buffer.from(await own.arrayBuffer());
      assert.equal(png.subarray(1, 4).toString(), 'PNG');
      assert.ok(png.readUInt32BE(16) >= 640 && png.readUInt32BE(20) >= 400, 'a whole screen');
      assert.equal((await get(bob)).status, 403, "bob does not see alice's screen");
      assert.equal((await get(undefined)).status, 401);
      // Nothing of QEMU's file is left in the VM's folder.
      const dir = t.server.ctx.vms.paths(t.server.ctx.vms.get('run')).dir;
      assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('screen-')), []);
      // Serving a console page starts the picture, for the VM's owner only (QMP's transcript shows what QEMU got).
      const transcript = join(dir, 'qmp-transcript.log');
      const screendumps = () => readFileSync(transcript, 'utf8').split('screendump').length - 1;
      // Sessions made by the server's own accounts (sign-ins from this address are throttled by an earlier test).
      const users = t.server.ctx.users;
      const cookieOf = async (name: string) => `oriel_session=${users.createSession(users.byName(name)!.id).token}`;
      const page = (cookie: string) => fetch(`${t.url}/vms/run/console`, { headers: { cookie } });
      await new Promise((r) => setTimeout(r, 1100)); // the picture above is no longer served again
      const before = screendumps();
      assert.equal((await page(await cookieOf('bob'))).status, 200);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(screendumps(), before, "bob's page of alice's VM starts nothing");
      assert.equal((await page(await cookieOf('alice'))).status, 200);
      for (let i = 0; i < 150 && screendumps() === before; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(screendumps() > before, "alice's page started a screendump");
      assert.equal((await alice.post('/api/vms', { name: 'still', image: 'tiny' })).status, 201);
      assert.equal((await get(alice, 'still')).status, 409, 'a stopped VM has no screen');
      assert.equal((await alice.delete('/api/vms/still')).status, 204);
      t.server.ctx.config.consolePreview = false;
      try {
        assert.equal((await get(alice)).status, 404);
      } finally {
        t.server.ctx.config.consolePreview = true;
      }
    });

    test(`console WebSockets per user are capped (${MAX_CONSOLES_PER_USER}); others are not affected`, async () => {
      const open: WebSocket[] = [];
      const auth = { authorization: `Bearer ${alice.token}` };
      try {
        for (let i = 0; i < MAX_CONSOLES_PER_USER; i++) {
          const ws = new WebSocket(`${wsBase}/api/vms/run/spice`, { headers: auth });
          ws.on('error', () => undefined);
          await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('unexpected-response', () => reject(new Error(`ws ${i} refused`)))));
          open.push(ws);
        }
        const over = await openWs(`${wsBase}/api/vms/run/spice`, auth);
        assert.equal(over.status, 429);
        assert.equal((await t.admin.get('/api/vms')).status, 200, 'the API answers');
      } finally {
        for (const ws of open) ws.terminate();
      }
    });

    test("a guest's gzip bomb on the exec channel is refused, not unpacked", async () => {
      const r = await alice.post('/api/vms/run/exec', { argv: ['sh', '-c', 'yes | head -c 40000000'], timeoutSec: 120 });
      assert.equal(r.status, 502, JSON.stringify(r.body).slice(0, 200));
      assert.match(r.body.message, /output is over 16 MiB/);
      const ok = await alice.post('/api/vms/run/exec', { argv: ['echo', 'still here'] });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.stdout, 'still here\n');
    });
  });
});
