// Credentials that end while a request is in flight: a request whose body arrives after its token was revoked is
// refused; a password change checked against a password an admin has since reset changes nothing; a sign-in checked
// against the old password does not outlive the reset; and one user cannot pile up API tokens without bound.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { MAX_TOKENS_PER_USER } from '../../src/server/auth/tokens.ts';
import { addUser, startTestServer, type TestServer } from '../helpers/server.ts';

/** Sends a request's headers now and its body when `release` is called; resolves with the status line's code. */
function slowRequest(url: string, path: string, token: string, body: string) {
  const u = new URL(url);
  const sock = connect(Number(u.port), u.hostname);
  let reply = '';
  sock.on('data', (d) => (reply += d.toString()));
  const status = new Promise<number>((resolve, reject) => {
    sock.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 0)));
    sock.on('error', reject);
  });
  const headersSent = new Promise<void>((resolve) => sock.on('connect', () => {
    sock.write(`POST ${path} HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`);
    resolve();
  }));
  return { headersSent, release: () => sock.write(body), status };
}

describe('security: credentials ending while a request is in flight', () => {
  let t: TestServer;

  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t?.destroy();
  });

  test('a body sent after the token was revoked is refused: no new token from a revoked one', async () => {
    const bob = await addUser(t, 'bob');
    const own = await bob.post('/api/tokens', { name: 'slow' });
    assert.equal(own.status, 201);
    const req = slowRequest(t.url, '/api/tokens', own.body.token, JSON.stringify({ name: 'x', expires: 'never' }));
    await req.headersSent;
    await new Promise((r) => setTimeout(r, 200)); // the server has read the headers (onRequest ran)
    assert.equal((await t.admin.delete(`/api/tokens/${own.body.info.id}`)).status, 204);
    req.release();
    assert.equal(await req.status, 401);
    const names = ((await t.admin.get('/api/tokens?all=1')).body as { name: string }[]).map((x) => x.name);
    assert.ok(!names.includes('x'), `no token made: ${names.join(', ')}`);
  });

  test("a password change checked before an admin's reset changes nothing; a sign-in checked before it fails", async () => {
    await addUser(t, 'carol');
    const users = t.server.ctx.users;
    const carol = users.list().find((u) => u.name === 'carol')!;
    const verified = await users.checkPassword(carol.id, 'carol-password');
    assert.ok(verified);
    const signIn = await users.authenticate('carol', 'carol-password');
    assert.ok(signIn);
    await users.setPassword(carol.id, 'reset-by-admin'); // the admin's reset lands meanwhile
    await assert.rejects(users.setPassword(carol.id, 'chosen-by-attacker', undefined, verified),
      (e: Error & { status?: number }) => e.status === 409);
    assert.throws(() => users.signIn(carol.id, signIn.passwordHash, { name: 'late' }),
      (e: Error & { status?: number }) => e.status === 401);
    assert.ok(await users.checkPassword(carol.id, 'reset-by-admin'), "the admin's password holds");
    const login = await t.anon.post('/api/auth/login', { username: 'carol', password: 'reset-by-admin' });
    assert.equal(login.status, 200);
  });

  test(`at most ${MAX_TOKENS_PER_USER} live API tokens per user (429 beyond)`, async () => {
    const dave = await addUser(t, 'dave'); // holds one already
    for (let i = 1; i < MAX_TOKENS_PER_USER; i++) {
      assert.equal((await dave.post('/api/tokens', { name: `t${i}` })).status, 201);
    }
    const over = await dave.post('/api/tokens', { name: 'one too many' });
    assert.equal(over.status, 429);
    assert.match(over.body.message, /too many API tokens/);
  });
});
