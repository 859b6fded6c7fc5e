// The registry that closes long-lived streams when their credential ends, and the token store behind it, on a
// fresh database with a test clock (no server).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openDatabase } from '../../src/db/database.ts';
import { migrations } from '../../src/db/migrations.ts';
import { CredentialStreams, type Credential } from '../../src/server/auth/streams.ts';
import { ApiTokens, expiryMs } from '../../src/server/auth/tokens.ts';

const cred = (userId: string, kind: Credential['kind'], id: string, expiresAt: string | null = null): Credential =>
  ({ userId, kind, id, expiresAt });

test('streams end by credential, by user (keeping the one that made the change), once, and not after unregistering', () => {
  const s = new CredentialStreams();
  const closed: string[] = [];
  const add = (name: string, c: Credential) => s.add(c, (reason) => closed.push(`${name}: ${reason}`));
  add('a1', cred('alice', 'token', 't1'));
  add('a2', cred('alice', 'session', 'h1'));
  add('a3', cred('alice', 'token', 't2'));
  const off = add('b1', cred('bob', 'token', 't3'));
  assert.equal(s.endCredential('token', 't1', 'revoked'), 1);
  assert.equal(s.endCredential('token', 't1', 'revoked'), 0, 'each stream ends once');
  assert.equal(s.endUser('alice', 'password changed', { kind: 'session', id: 'h1' }), 1);
  off();
  assert.equal(s.endUser('bob', 'deleted'), 0, 'unregistered streams are left alone');
  assert.deepEqual(closed, ['a1: revoked', 'a3: password changed']);
  assert.equal(s.size, 1);
});

test('a stream is closed when its credential expires, also past the longest timer delay', async () => {
  let now = Date.parse('2030-01-01T00:00:00Z');
  const s = new CredentialStreams(() => now);
  const closed: string[] = [];
  s.add(cred('u', 'token', 'soon', new Date(now + 50).toISOString()), (r) => closed.push(r));
  s.add(cred('u', 'session', 'past', new Date(now - 1).toISOString()), (r) => closed.push(r));
  s.add(cred('u', 'token', 'far', new Date(now + 40 * 86_400_000).toISOString()), (r) => closed.push(r));
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(closed, ['your session expired: sign in again'], 'an already expired credential ends at once');
  now += 60;
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(closed.slice(1), ['the API token expired on 2030-01-01T00:00:00.050Z']);
  assert.equal(s.size, 1, 'the far one waits (its timer re-arms in steps of at most 24.8 days)');
});

test('tokens: lifetimes, expiry with the date, revocation by owner only, and the migration of older tokens', () => {
  assert.equal(expiryMs('90d'), 90 * 86_400_000);
  assert.equal(expiryMs('30s'), 30_000);
  assert.equal(expiryMs('never'), null);
  const dir = mkdtempSync(join(tmpdir(), 'otok-'));
  try {
    // A database at the schema before token expiry, with one token: the upgrade gives it 90 days.
    const file = join(dir, 'old.db');
    const old = new Database(file);
    const expiry = migrations.findIndex((m) => m.includes('ALTER TABLE api_tokens ADD COLUMN expires_at'));
    assert.ok(expiry > 0);
    for (const m of migrations.slice(0, expiry)) old.exec(m);
    old.pragma(`user_version = ${expiry}`);
    old.prepare("INSERT INTO users VALUES ('u1', 'alice', 'user', 'x', '2020-01-01T00:00:00.000Z')").run();
    old.prepare("INSERT INTO api_tokens (id, user_id, name, secret_hash, created_at) VALUES ('aaaaaaaaaaaa', 'u1', 'old', 'h', 'c')").run();
    old.close();
    const db = openDatabase(file);
    const migrated = db.prepare('SELECT expires_at FROM api_tokens').get() as { expires_at: string };
    const days = (Date.parse(migrated.expires_at) - Date.now()) / 86_400_000;
    assert.ok(days > 89.9 && days < 90.1, `${migrated.expires_at}`);

    let now = Date.parse('2030-01-01T00:00:00Z');
    const streams = new CredentialStreams(() => now);
    const tokens = new ApiTokens(db, streams, () => now);
    const { token, info } = tokens.create('u1', 'cli', '1h');
    assert.equal(info.expiresAt, '2030-01-01T01:00:00.000Z');
    assert.equal(tokens.authenticate(token).id, info.id);
    assert.equal(tokens.get(info.id)!.lastUsedAt, '2030-01-01T00:00:00.000Z');
    now += 3_600_000;
    assert.throws(() => tokens.authenticate(token), /the API token expired on 2030-01-01T01:00:00.000Z/);
    assert.equal(tokens.alive(info.id), false);
    assert.throws(() => tokens.authenticate(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')), /not valid/);
    const other = tokens.create('u1', 'x', 'never');
    assert.throws(() => tokens.revoke(other.info.id, 'someone-else'), /no token with id/);
    let ended = '';
    streams.add({ userId: 'u1', kind: 'token', id: other.info.id, expiresAt: null }, (r) => (ended = r));
    tokens.revoke(other.info.id, 'u1');
    assert.equal(ended, 'the API token was revoked');
    assert.throws(() => tokens.authenticate(other.token), /not valid \(revoked/);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
