// Credentials end, and what was opened with them ends too: API tokens expire and are revoked (each user their own),
// a password change signs out everything but the credential that made it, an admin's reset signs out everything,
// and open streams (events, serial and SPICE WebSockets) are closed with a reason when their credential ends.
// A tiny guest is booted only for the WebSocket cases; run this file under the guest lock.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ensureTinyImage } from '../helpers/images.ts';
import { addUser, Client, startTestServer, type TestServer } from '../helpers/server.ts';

const BIN = join(import.meta.dirname, '../../bin/oriel.js');

/** Follows /api/events; `ended` gives everything received, then how it ended ([ended], [timed out] or HTTP n). */
function followEvents(url: string, headers: Record<string, string>, limitMs = 15_000) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), limitMs);
  let text = '';
  let onConnected!: () => void;
  const connected = new Promise<void>((resolve) => (onConnected = resolve));
  const ended = (async () => {
    try {
      const res = await fetch(url + '/api/events', { headers, signal: ac.signal });
      if (res.status !== 200) return `HTTP ${res.status} ${await res.text()}`;
      const dec = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        text += dec.decode(chunk, { stream: true });
        if (text.includes(': connected')) onConnected();
      }
      return `${text}[ended]`;
    } catch {
      return `${text}[timed out]`;
    } finally {
      clearTimeout(timer);
      onConnected();
    }
  })();
  return { connected, ended };
}

/** A session cookie for `username`. */
async function sessionOf(t: TestServer, username: string, password: string): Promise<Client> {
  const r = await t.anon.post('/api/auth/login', { username, password });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return new Client(() => t.url, undefined, r.headers.get('set-cookie')!.split(';')[0]!);
}

/** Opens a WebSocket; resolves once open (or refused: status) with a promise of how it closes. */
type WsEnd = { code: number; reason: string; ms: number };
function openWs(url: string, headers: Record<string, string> = {}) {
  return new Promise<{ status?: number; closed: Promise<WsEnd>; since: () => void }>(
    (resolve) => {
      const ws = new WebSocket(url, { headers });
      let t0 = Date.now();
      const closed = new Promise<WsEnd>((res) =>
        ws.on('close', (code, reason) => res({ code, reason: reason.toString(), ms: Date.now() - t0 })));
      ws.on('error', () => undefined);
      ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode, closed, since: () => undefined }));
      ws.on('open', () => resolve({ closed, since: () => (t0 = Date.now()) }));
    },
  );
}

describe('security: sessions and API tokens end, and their streams with them', () => {
  let t: TestServer;

  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t?.destroy();
  });

  test('a token expires: 401 saying when, listed as expired; lifetimes are validated', async () => {
    const short = await t.admin.post('/api/tokens', { name: 'short', expires: '1s' });
    assert.equal(short.status, 201, JSON.stringify(short.body));
    const c = t.as(short.body.token);
    assert.equal((await c.get('/api/auth/me')).status, 200);
    await new Promise((r) => setTimeout(r, 1200));
    const r = await c.get('/api/auth/me');
    assert.equal(r.status, 401);
    assert.equal(r.body.message, `the API token expired on ${short.body.info.expiresAt}: sign in again (oriel login)`);
    const listed = (await t.admin.get('/api/tokens')).body.find((x: { id: string }) => x.id === short.body.info.id);
    assert.equal(listed.expired, true);

    const never = await t.admin.post('/api/tokens', { name: 'forever', expires: 'never' });
    assert.equal(never.body.info.expiresAt, null);
    const dflt = await t.admin.post('/api/tokens', { name: 'default' });
    const days = (Date.parse(dflt.body.info.expiresAt) - Date.now()) / 86_400_000;
    assert.ok(days > 89.9 && days <= 90, `default lifetime ${days} days`);
    for (const expires of ['0d', '5y', '-1d', '3651d', '']) {
      const bad = await t.admin.post('/api/tokens', { name: 'bad', expires });
      assert.equal(bad.status, 400, expires);
      assert.match(bad.body.message, expires === '3651d' ? /at most 3650 days/ : /s, m, h or d/, expires);
    }
    const badLogin = await t.anon.post('/api/auth/login', { username: 'admin', password: 'x', tokenExpires: '1w' });
    assert.equal(badLogin.status, 400);
  });

  test('a revoked token is refused; users list and revoke only their own tokens (others: 404)', async () => {
    const alice = await addUser(t, 'alice');
    const mine = await alice.get('/api/tokens');
    assert.equal(mine.status, 200);
    assert.deepEqual(mine.body.map((x: { user: string; current: boolean }) => [x.user, x.current]), [['alice', true]]);
    assert.equal((await alice.get('/api/tokens?all=1')).status, 403);
    const adminTokens = (await t.admin.get('/api/tokens')).body as { id: string; user: string }[];
    assert.ok(adminTokens.length > 0 && adminTokens.every((x) => x.user === 'admin'));
    const adminsId = adminTokens[0]!.id;
    const refused = await alice.delete(`/api/tokens/${adminsId}`);
    assert.equal(refused.status, 404);
    assert.equal(refused.body.message, `no token with id '${adminsId}'`, 'the same answer as for a made-up id');
    assert.equal((await alice.delete('/api/tokens/000000000000')).status, 404);
    assert.equal((await t.admin.get('/api/auth/me')).status, 200, "admin's token still works");

    const spare = await alice.post('/api/tokens', { name: 'spare' });
    const all = (await t.admin.get('/api/tokens?all=1')).body as { id: string; user: string }[];
    assert.ok(all.some((x) => x.id === spare.body.info.id && x.user === 'alice'), 'admins see everyone with ?all=1');
    assert.equal((await alice.delete(`/api/tokens/${spare.body.info.id}`)).status, 204);
    const r = await t.as(spare.body.token).get('/api/auth/me');
    assert.equal(r.status, 401);
    assert.match(r.body.message, /not valid \(revoked/);
    assert.equal((await alice.delete(`/api/tokens/${spare.body.info.id}`)).status, 404, 'gone');
    // An admin may revoke anyone's.
    const other = await alice.post('/api/tokens', { name: 'other' });
    assert.equal((await t.admin.delete(`/api/tokens/${other.body.info.id}`)).status, 204);
    assert.equal((await t.as(other.body.token).get('/api/auth/me')).status, 401);
  });

  test('an open events stream is closed when its token is revoked, expires, or its session signs out', async () => {
    const tok = await t.admin.post('/api/tokens', { name: 'watcher' });
    const revoked = followEvents(t.url, { authorization: `Bearer ${tok.body.token}` });
    await revoked.connected;
    assert.equal((await t.admin.delete(`/api/tokens/${tok.body.info.id}`)).status, 204);
    assert.match(await revoked.ended, /event: closed\ndata: \{"reason":"the API token was revoked"\}\n\n\[ended\]$/);

    const brief = await t.admin.post('/api/tokens', { name: 'brief', expires: '2s' });
    const expiring = followEvents(t.url, { authorization: `Bearer ${brief.body.token}` });
    await expiring.connected;
    const t0 = Date.now();
    const text = await expiring.ended;
    assert.ok(text.includes(`"reason":"the API token expired on ${brief.body.info.expiresAt}"`), text);
    assert.ok(text.endsWith('[ended]') && Date.now() - t0 < 4000, text);

    const s = await sessionOf(t, 'admin', 'admin-test-password');
    const viaCookie = followEvents(t.url, { cookie: s.cookie! });
    await viaCookie.connected;
    assert.equal((await s.post('/api/auth/logout')).status, 204);
    assert.match(await viaCookie.ended, /"reason":"signed out"\}\n\n\[ended\]$/);
    assert.equal(t.server.ctx.users.streams.size, 0, 'nothing left registered');
  });

  test('a password change: old password refused, new one works, other sessions and tokens end', async () => {
    const bob = await addUser(t, 'bob'); // token; password bob-password
    const s1 = await sessionOf(t, 'bob', 'bob-password');
    const s2 = await sessionOf(t, 'bob', 'bob-password');
    const other = followEvents(t.url, { cookie: s2.cookie! });
    await other.connected;

    const wrong = await s1.post('/api/me/password', { currentPassword: 'not-it-at-all', newPassword: 'bob-new-password' });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.message, 'the current password is wrong');
    const short = await s1.post('/api/me/password', { currentPassword: 'bob-password', newPassword: 'short' });
    assert.equal(short.status, 400);
    assert.match(short.body.message, /at least 8 characters/);
    assert.equal((await s2.get('/api/auth/me')).status, 200, 'refused changes end nothing');

    const ok = await s1.post('/api/me/password', { currentPassword: 'bob-password', newPassword: 'bob-new-password' });
    assert.equal(ok.status, 204, JSON.stringify(ok.body));
    assert.equal((await s1.get('/api/auth/me')).status, 200, 'the session that changed it stays');
    assert.equal((await s2.get('/api/auth/me')).status, 401, 'another session ended');
    assert.equal((await bob.get('/api/auth/me')).status, 401, 'API tokens ended');
    assert.match(await other.ended, /"reason":"the password was changed: sign in again"\}\n\n\[ended\]$/);
    assert.equal((await t.anon.post('/api/auth/login', { username: 'bob', password: 'bob-password' })).status, 401);
    assert.equal((await t.anon.post('/api/auth/login', { username: 'bob', password: 'bob-new-password' })).status, 200);

    // Changed with a token: that token stays, the session goes.
    const tok = (await t.anon.post('/api/auth/login', { username: 'bob', password: 'bob-new-password', tokenName: 'c' }))
      .body.token as string;
    const viaToken = await t.as(tok).post('/api/me/password', { currentPassword: 'bob-new-password', newPassword: 'bob-third-password' });
    assert.equal(viaToken.status, 204);
    assert.equal((await t.as(tok).get('/api/auth/me')).status, 200);
    assert.equal((await s1.get('/api/auth/me')).status, 401);
  });

  test("an admin's reset ends all the user's sessions and tokens; one's own needs the current password", async () => {
    const carol = await addUser(t, 'carol');
    const s = await sessionOf(t, 'carol', 'carol-password');
    assert.equal((await carol.req('PUT', '/api/users/carol/password', { password: 'carol-2-password' })).status, 403);
    assert.equal((await t.admin.req('PUT', '/api/users/nobody/password', { password: 'whatever-pw' })).status, 404);
    const self = await t.admin.req('PUT', '/api/users/admin/password', { password: 'whatever-pw' });
    assert.equal(self.status, 409);
    assert.match(self.body.message, /POST \/api\/me\/password/);
    const r = await t.admin.req('PUT', '/api/users/carol/password', { password: 'carol-2-password' });
    assert.equal(r.status, 204, JSON.stringify(r.body));
    assert.equal((await carol.get('/api/auth/me')).status, 401);
    assert.equal((await s.get('/api/auth/me')).status, 401);
    assert.equal((await t.anon.post('/api/auth/login', { username: 'carol', password: 'carol-2-password' })).status, 200);
    assert.equal((await t.admin.get('/api/auth/me')).status, 200, "the admin's own token is untouched");
  });

  test('oriel login --expires, token list, user passwd, logout: the token is revoked and forgotten', async () => {
    assert.equal((await t.admin.post('/api/users', { name: 'erin', password: 'erin-password' })).status, 201);
    const dir = mkdtempSync(join(tmpdir(), 'osess-'));
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: dir, ORIEL_URL: t.url };
    delete env.ORIEL_TOKEN;
    const oriel = (args: string[], input = '') =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        const p = spawn(process.execPath, [BIN, ...args], { env });
        let stdout = '', stderr = '';
        p.stdout.on('data', (d) => (stdout += d));
        p.stderr.on('data', (d) => (stderr += d));
        p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
        p.stdin.end(input);
      });
    try {
      const bad = await oriel(['login', '--user', 'erin', '--password-stdin', '--expires', '2w'], 'erin-password\n');
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /s, m, h or d/);
      const login = await oriel(['login', '--user', 'erin', '--password-stdin', '--expires', '7d'], 'erin-password\n');
      assert.equal(login.code, 0, login.stderr);
      assert.match(login.stdout, /expires in 7d/);
      const file = join(dir, 'oriel', 'credentials.json');
      const token = JSON.parse(readFileSync(file, 'utf8'))[t.url] as string;
      const list = await oriel(['token', 'list']);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, new RegExp(`^${token.split('_')[1]} \\*\\s+cli@`, 'm'));

      const pw = await oriel(['user', 'passwd', '--password-stdin'], 'erin-password\nerin-new-password\n');
      assert.equal(pw.code, 0, pw.stderr);
      assert.equal((await t.as(token).get('/api/auth/me')).status, 200, 'the CLI stays signed in after its own change');
      assert.equal((await t.anon.post('/api/auth/login', { username: 'erin', password: 'erin-new-password' })).status, 200);
      const reset = await oriel(['user', 'passwd', 'admin', '--password-stdin'], 'x\n');
      assert.equal(reset.code, 1, 'erin is no admin');

      const out = await oriel(['logout']);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /token revoked, removed from the credentials file/);
      assert.equal((await t.as(token).get('/api/auth/me')).status, 401);
      assert.equal(JSON.parse(readFileSync(file, 'utf8'))[t.url], undefined);
      const again = await oriel(['logout']);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /not signed in/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('with a running guest', () => {
    let wsBase: string;
    before(async () => {
      await ensureTinyImage();
      wsBase = t.url.replace('http', 'ws');
      assert.equal((await t.admin.post('/api/vms', { name: 'run', image: 'tiny', memoryMiB: 128 })).status, 201);
      assert.equal((await t.admin.post('/api/vms/run/start')).status, 200);
      await t.server.ctx.vms.waitReady('run', 120_000);
    });

    test('serial and SPICE WebSockets of a user are closed when the user is deleted', async () => {
      const dave = await addUser(t, 'dave', 'admin');
      const serial = await openWs(`${wsBase}/api/vms/run/serial`, { authorization: `Bearer ${dave.token}` });
      assert.equal(serial.status, undefined, 'serial console open');
      const s = await sessionOf(t, 'dave', 'dave-password');
      const ticket = await s.post('/api/vms/run/console-ticket');
      assert.equal(ticket.status, 201);
      const spice = await openWs(`${wsBase}${ticket.body.path}`);
      assert.equal(spice.status, undefined, 'SPICE channel open');
      serial.since();
      spice.since();
      assert.equal((await t.admin.delete('/api/users/dave')).status, 204);
      for (const ws of [await serial.closed, await spice.closed]) {
        assert.equal(ws.code, 4401);
        assert.equal(ws.reason, 'the account was deleted');
        assert.ok(ws.ms < 2000, `closed after ${ws.ms} ms`);
      }
    });

    test('a console ticket is refused once the credential it was issued under ended', async () => {
      const tok = await t.admin.post('/api/tokens', { name: 'ticketing' });
      const ticket = await t.as(tok.body.token).post('/api/vms/run/console-ticket');
      assert.equal(ticket.status, 201);
      assert.equal((await t.admin.delete(`/api/tokens/${tok.body.info.id}`)).status, 204);
      const ws = await openWs(`${wsBase}${ticket.body.path}`);
      assert.equal(ws.status, 401);
      const serial = await openWs(`${wsBase}/api/vms/run/serial`, { authorization: `Bearer ${t.adminToken}` });
      const other = await t.admin.post('/api/tokens', { name: 'x' });
      assert.equal((await t.admin.delete(`/api/tokens/${other.body.info.id}`)).status, 204);
      const race = await Promise.race([serial.closed, new Promise((r) => setTimeout(() => r('open'), 500))]);
      assert.equal(race, 'open', 'revoking another token leaves this stream alone');
    });
  });
});
