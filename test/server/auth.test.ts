// Authentication and authorisation through the real HTTP API (no VM is started here).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_PASSWORD, addUser, Client, startTestServer, type TestServer } from '../helpers/server.ts';
import { ensureTinyImage } from '../helpers/images.ts';

describe('auth', () => {
  let t: TestServer;
  before(async () => {
    await ensureTinyImage();
    t = await startTestServer();
  });
  after(async () => { await t.destroy(); });

  test('health and login are the only routes open without auth', async () => {
    assert.equal((await t.anon.get('/api/health')).status, 200);
    for (const [m, p] of [
      ['GET', '/api/vms'],
      ['POST', '/api/vms'],
      ['GET', '/api/users'],
      ['GET', '/api/operations'],
      ['GET', '/api/images'],
      ['GET', '/api/openapi.json'],
      ['POST', '/api/vms/x/start'],
      ['GET', '/api/events'],
    ]) {
      const r = await t.anon.req(m!, p!, m === 'POST' ? {} : undefined);
      assert.equal(r.status, 401, `${m} ${p}`);
      assert.match(r.body.message, /sign in/);
    }
  });

  test('a wrong password or a forged token is refused', async () => {
    const r = await t.anon.post('/api/auth/login', { username: 'admin', password: 'nope-nope' });
    assert.equal(r.status, 401);
    assert.equal(r.body.message, 'wrong user name or password');
    assert.equal((await t.anon.post('/api/auth/login', { username: 'ghost', password: 'whatever1' })).status, 401);
    const forged = t.adminToken.slice(0, -4) + 'AAAA';
    assert.equal((await t.as(forged).get('/api/vms')).status, 401);
    assert.equal((await t.as('not-a-token').get('/api/vms')).status, 401);
  });

  test('API tokens have a greppable prefix and can be revoked', async () => {
    assert.match(t.adminToken, /^oriel_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    const created = await t.admin.post('/api/tokens', { name: 'temp' });
    assert.equal(created.status, 201);
    const c = t.as(created.body.token);
    assert.equal((await c.get('/api/auth/me')).body.name, 'admin');
    const list = await t.admin.get('/api/tokens');
    assert.ok(list.body.some((x: { name: string }) => x.name === 'temp'));
    // The secret is everything after the id (base64url: it may hold '_' itself, even begin with one).
    const secret = created.body.token.split('_').slice(2).join('_');
    assert.equal(secret.length, 43);
    assert.ok(!JSON.stringify(list.body).includes(secret), 'secrets are never listed');
    assert.equal((await t.admin.delete(`/api/tokens/${created.body.info.id}`)).status, 204);
    assert.equal((await c.get('/api/auth/me')).status, 401);
  });

  test('session cookie: HttpOnly, SameSite=Strict; cross-origin writes refused; logout ends it', async () => {
    const r = await t.anon.post('/api/auth/login', { username: 'admin', password: ADMIN_PASSWORD });
    const setCookie = r.headers.get('set-cookie')!;
    assert.match(setCookie, /oriel_session=/);
    assert.match(setCookie, /HttpOnly/i);
    assert.match(setCookie, /SameSite=Strict/i);
    const cookie = setCookie.split(';')[0]!;
    const c = new Client(() => t.url, undefined, cookie);
    assert.equal((await c.get('/api/auth/me')).body.name, 'admin');
    const evil = await c.req(
      'POST',
      '/api/users',
      { name: 'mallory', password: 'xxxxxxxxxx' },
      { origin: 'http://evil.example' },
    );
    assert.equal(evil.status, 403);
    assert.equal((await c.post('/api/auth/logout')).status, 204);
    assert.equal((await c.get('/api/auth/me')).status, 401);
  });

  test('only admins manage users; users see only their own VMs', async () => {
    const alice = await addUser(t, 'alice');
    const bob = await addUser(t, 'bob');
    assert.equal((await alice.get('/api/users')).status, 403);
    assert.equal((await alice.post('/api/users', { name: 'eve', password: 'password1' })).status, 403);
    // Created from the image library (not started here): ordinary users never name host paths.
    const spec = { image: 'tiny' };
    assert.equal((await alice.post('/api/vms', { name: 'alice-vm', ...spec })).status, 201);
    assert.equal((await bob.post('/api/vms', { name: 'bob-vm', ...spec })).status, 201);
    assert.deepEqual((await alice.get('/api/vms')).body.map((v: { name: string }) => v.name), ['alice-vm']);
    assert.deepEqual((await t.admin.get('/api/vms')).body.map((v: { name: string }) => v.name), ['alice-vm', 'bob-vm']);
    for (const [m, p] of [
      ['GET', '/api/vms/bob-vm'],
      ['POST', '/api/vms/bob-vm/start'],
      ['DELETE', '/api/vms/bob-vm'],
      ['GET', '/api/vms/bob-vm/log'],
      ['POST', '/api/vms/bob-vm/exec'],
    ]) {
      const r = await alice.req(m!, p!, m === 'POST' ? (p!.endsWith('exec') ? { argv: ['id'] } : {}) : undefined);
      assert.equal(r.status, 403, `${m} ${p}`);
      assert.match(r.body.message, /belongs to another user/);
    }
    assert.equal((await t.admin.get('/api/vms/bob-vm')).status, 200);
    // A user who still owns VMs cannot be deleted; the last admin neither.
    assert.equal((await t.admin.delete('/api/users/bob')).status, 409);
    assert.equal((await bob.delete('/api/vms/bob-vm')).status, 204);
    assert.equal((await t.admin.delete('/api/users/bob')).status, 204);
    assert.equal((await bob.get('/api/vms')).status, 401, "a deleted user's tokens die with them");
    assert.equal((await t.admin.delete('/api/users/admin')).status, 409);
  });

  test('the OpenAPI document describes the API', async () => {
    const r = await t.admin.get('/api/openapi.json');
    assert.equal(r.status, 200);
    assert.equal(r.body.openapi, '3.1.0');
    for (const p of [
      '/api/vms',
      '/api/vms/{vm}/start',
      '/api/vms/{vm}/exec',
      '/api/users',
      '/api/operations/{id}',
      '/api/images/{name}/build',
    ]) {
      assert.ok(r.body.paths[p], `missing ${p}`);
    }
  });
});
