// Uploaded images against a real server (no guest): announced, sent in resumable chunks straight to disk, typed by
// signature (ISO) or by qemu-img (qcow2/raw), owned by their uploader, counted against the disk quota.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OrielClient } from '../../src/api/client.ts';
import { addUser, startTestServer, type Client, type TestServer } from '../helpers/server.ts';

/** Bytes that look like an ISO 9660 image: "CD001" in the first volume descriptor (sector 16). */
function fakeIso(size: number): Buffer {
  const b = randomBytes(size);
  b[16 * 2048] = 1;
  b.write('CD001', 16 * 2048 + 1, 'latin1');
  return b;
}

describe('uploaded images', () => {
  let t: TestServer;
  let alice: Client;
  let bob: Client;
  let aliceToken: string;
  let scratch: string;
  const put = (c: Client | string, name: string, bytes: Buffer, range?: string) =>
    fetch(`${t.url}/api/images/uploads/${name}/data`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${typeof c === 'string' ? c : c.token}`, 'content-type': 'application/octet-stream',
        ...(range ? { 'content-range': range } : {}),
      },
      body: bytes,
    }).then(async (r) => ({ status: r.status, body: await r.json() as any }));
  const imagesDir = () => join(t.config.dataDir, 'images');

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'oup-'));
    t = await startTestServer();
    alice = await addUser(t, 'alice');
    bob = await addUser(t, 'bob');
    aliceToken = alice.token!;
  });
  after(async () => {
    await t?.destroy();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('an ISO sent in two chunks is ready, typed iso, and byte for byte what was sent', async () => {
    const iso = fakeIso(96 * 1024);
    const a = await alice.post('/api/images/uploads', { name: 'install', sizeBytes: iso.length });
    assert.equal(a.status, 201, JSON.stringify(a.body));
    assert.equal(a.body.state, 'uploading');
    const half = 40_000;
    const first = await put(alice, 'install', iso.subarray(0, half), `bytes 0-${half - 1}/${iso.length}`);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.receivedBytes, half);
    // A chunk at the wrong offset is refused: the upload resumes where the bytes end.
    const wrong = await put(alice, 'install', iso.subarray(0, 10), `bytes 0-9/${iso.length}`);
    assert.equal(wrong.status, 409);
    assert.match(wrong.body.message, /continues at byte 40000/);
    assert.equal((await alice.get('/api/images/uploads/install')).body.receivedBytes, half);
    const rest = await put(alice, 'install', iso.subarray(half), `bytes ${half}-${iso.length - 1}/${iso.length}`);
    assert.equal(rest.status, 200, JSON.stringify(rest.body));
    assert.equal(rest.body.state, 'ready');
    assert.equal(rest.body.kind, 'iso');
    assert.equal(rest.body.format, 'raw');
    const [dir] = readdirSync(imagesDir());
    assert.ok(readFileSync(join(imagesDir(), dir!, 'data')).equals(iso), 'the file on disk is the upload');
  });

  test("others neither see nor use an image; admins do both", async () => {
    assert.equal((await bob.get('/api/images/uploads/install')).status, 403);
    assert.deepEqual((await bob.get('/api/images/uploads')).body, []);
    const use = await bob.post('/api/vms', { name: 'bobs', cdrom: 'install', diskBytes: 64 * 2 ** 20 });
    assert.equal(use.status, 403, JSON.stringify(use.body));
    assert.match(use.body.message, /belongs to another user/);
    assert.equal((await put(bob, 'install', Buffer.from('x'))).status, 403);
    assert.equal((await bob.delete('/api/images/uploads/install')).status, 403);
    assert.deepEqual((await t.admin.get('/api/images/uploads')).body.map((i: any) => [i.name, i.owner]),
      [['install', 'alice']]);
    const own = await alice.post('/api/vms', { name: 'alices', cdrom: 'install', diskBytes: 64 * 2 ** 20, firmware: 'uefi' });
    assert.equal(own.status, 201, JSON.stringify(own.body));
    assert.equal(own.body.cdrom, 'install');
    assert.equal(own.body.firmware, 'uefi');
    assert.equal(own.body.diskBytes, 64 * 2 ** 20);
    // In use: not deleted; once the VM is gone, deleted with its file.
    const busy = await alice.delete('/api/images/uploads/install');
    assert.equal(busy.status, 409);
    assert.match(busy.body.message, /used by VM 'alices'/);
    assert.equal((await alice.delete('/api/vms/alices')).status, 204);
    assert.equal((await alice.delete('/api/images/uploads/install')).status, 204);
    assert.deepEqual(readdirSync(imagesDir()), []);
  });

  test('over the disk quota: 413 at the announcement, nothing on disk; bytes past the announced size: 413', async () => {
    assert.equal((await t.admin.req('PUT', '/api/users/bob/quota', { diskBytes: 2 ** 20 })).status, 200);
    const big = await bob.post('/api/images/uploads', { name: 'big', sizeBytes: 2 * 2 ** 20 });
    assert.equal(big.status, 413, JSON.stringify(big.body));
    assert.equal(big.body.error, 'quota_exceeded');
    assert.deepEqual((await bob.get('/api/images/uploads')).body, []);
    assert.deepEqual(readdirSync(imagesDir()), []);
    // Within the quota it counts as used disk; more bytes than announced are refused.
    assert.equal((await bob.post('/api/images/uploads', { name: 'small', sizeBytes: 1000 })).status, 201);
    assert.equal((await bob.get('/api/me/quota')).body.usage.diskBytes, 1000);
    const over = await put(bob, 'small', randomBytes(1500));
    assert.equal(over.status, 413, JSON.stringify(over.body));
    const second = await bob.post('/api/images/uploads', { name: 'second', sizeBytes: 2 ** 20 - 999 });
    assert.equal(second.status, 413, 'the announced bytes of an unfinished upload count');
    const gone = await t.admin.delete('/api/users/bob');
    assert.equal(gone.status, 409, 'an account with images is not deleted');
    assert.match(gone.body.message, /still owns uploaded images \(small\)/);
    assert.equal((await bob.delete('/api/images/uploads/small')).status, 204);
    assert.deepEqual(readdirSync(imagesDir()), []);
  });

  test('disk images: qcow2 typed by qemu-img; one naming a backing file is refused and removed', async () => {
    const client = new OrielClient({ baseUrl: t.url, authHeaders: () => ({ authorization: `Bearer ${aliceToken}` }) });
    const send = (name: string, file: string) => {
      const data = readFileSync(file);
      return client.uploads.send(name, {
        size: data.length, read: async (s, e) => new Uint8Array(data.subarray(s, e)),
      });
    };
    const disk = join(scratch, 'd.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '32M']);
    const img = await send('mydisk', disk);
    assert.equal(img.state, 'ready');
    assert.equal(img.kind, 'disk');
    assert.equal(img.format, 'qcow2');
    assert.equal(img.virtualSizeBytes, 32 * 2 ** 20);
    const vm = await alice.post('/api/vms', { name: 'fromdisk', image: 'mydisk' });
    assert.equal(vm.status, 201, JSON.stringify(vm.body));
    assert.equal(vm.body.image, 'mydisk');
    const asCd = await alice.post('/api/vms', { name: 'x', cdrom: 'mydisk' });
    assert.equal(asCd.status, 400);
    assert.match(asCd.body.message, /is a disk image, not an ISO/);

    const evil = join(scratch, 'evil.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', '/etc/passwd', evil, '1M']);
    await assert.rejects(send('evil', evil), (e: Error & { status?: number }) =>
      e.status === 422 && /backing or data file/.test(e.message));
    assert.equal((await alice.get('/api/images/uploads/evil')).status, 404);
    assert.equal(readdirSync(imagesDir()).length, 1, 'only mydisk is left');
  });

  test('an interrupted upload resumes where its bytes end', async () => {
    const client = new OrielClient({ baseUrl: t.url, authHeaders: () => ({ authorization: `Bearer ${aliceToken}` }) });
    const iso = fakeIso(200 * 1024);
    await client.uploads.announce({ name: 'resumed', sizeBytes: iso.length });
    await client.uploads.sendChunk('resumed', 0, new Uint8Array(iso.subarray(0, 70_000)), iso.length);
    const reads: number[] = [];
    const img = await client.uploads.send('resumed', {
      size: iso.length,
      read: async (s, e) => { reads.push(s); return new Uint8Array(iso.subarray(s, e)); },
    });
    assert.deepEqual(reads, [70_000], 'only the missing bytes were sent');
    assert.equal(img.state, 'ready');
    assert.equal(img.kind, 'iso');
    const name = (await t.admin.get('/api/images/uploads')).body.find((i: any) => i.name === 'resumed');
    assert.equal(name.sizeBytes, iso.length);
    assert.ok(existsSync(imagesDir()));
  });

  test('a connection cut mid-chunk keeps what reached the disk; the upload resumes from there', async () => {
    const iso = fakeIso(300_000);
    assert.equal((await alice.post('/api/images/uploads', { name: 'cut', sizeBytes: iso.length })).status, 201);
    const { request } = await import('node:http');
    const req = request(`${t.url}/api/images/uploads/cut/data`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/octet-stream',
        'content-length': String(iso.length) },
    });
    req.on('error', () => undefined);
    req.write(iso.subarray(0, 120_000));
    await new Promise((r) => setTimeout(r, 300));
    req.destroy();
    let got = -1;
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const now = (await alice.get('/api/images/uploads/cut')).body.receivedBytes;
      if (now === got && now > 0) break;
      got = now;
    }
    assert.ok(got > 0 && got <= 120_000, `kept ${got} bytes`);
    const rest = await put(alice, 'cut', iso.subarray(got), `bytes ${got}-${iso.length - 1}/${iso.length}`);
    assert.equal(rest.body.state, 'ready', JSON.stringify(rest.body));
    const dir = t.server.ctx.vms.images.dir(t.server.ctx.vms.images.byName('cut')!);
    assert.ok(readFileSync(join(dir, 'data')).equals(iso));
  });

  test('the CLI uploads a file in chunks and lists it', async () => {
    const file = join(scratch, 'cli.iso');
    writeFileSync(file, fakeIso(9 * 2 ** 20 + 123)); // two chunks
    const env = { ...process.env, ORIEL_URL: t.url, ORIEL_TOKEN: aliceToken, XDG_CONFIG_HOME: scratch };
    // Not spawnSync: the server answering it runs in this process.
    const cli = (args: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((ok) => {
      const p = spawn(process.execPath, [join(import.meta.dirname, '../../bin/oriel.js'), ...args], { env });
      let stdout = '', stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (status) => ok({ status, stdout, stderr }));
    });
    const up = await cli(['image', 'upload', 'cli-iso', file]);
    assert.equal(up.status, 0, up.stderr);
    assert.match(up.stdout, /image 'cli-iso' is ready: ISO, 9\.0 MiB/);
    const ls = await cli(['image', 'uploads']);
    assert.match(ls.stdout, /cli-iso\s+iso\s+raw/);
    const again = await cli(['image', 'upload', 'cli-iso', file]);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /already exists \(HTTP 409\)/);
  });

  test('bad requests are refused without stopping anything', async () => {
    assert.equal((await alice.post('/api/images/uploads', { name: 'Bad Name', sizeBytes: 1 })).status, 400);
    assert.equal((await alice.post('/api/images/uploads', { name: 'tiny', sizeBytes: 1 })).status, 409);
    assert.equal((await alice.post('/api/images/uploads', { name: 'neg', sizeBytes: -1 })).status, 400);
    assert.equal((await alice.post('/api/images/uploads', { name: 'ok1', sizeBytes: 10 })).status, 201);
    assert.equal((await put(alice, 'ok1', Buffer.from('abc'), 'bytes nonsense')).status, 400);
    assert.equal((await put(alice, 'ok1', Buffer.from('abc'), 'bytes 0-2/11')).status, 409);
    const json = await alice.req('PUT', '/api/images/uploads/ok1/data', { a: 1 });
    assert.equal(json.status, 415);
    assert.equal((await alice.delete('/api/images/uploads/ok1')).status, 204);
    assert.equal((await t.anon.get('/api/images/uploads')).status, 401);
  });
});
