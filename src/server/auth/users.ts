// Accounts, browser sessions and API tokens.
//
// Sessions and tokens are random secrets of which only a SHA-256 hash is stored: they carry 256 bits of
// entropy, so a fast hash is enough (unlike passwords). API tokens look like `oriel_<id>_<secret>`: the prefix
// makes a leaked token easy to find with grep or a secret scanner, and the id finds its row without a scan.
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { Db } from '../../store/database.ts';
import { badRequest, conflict, notFound } from '../../errors.ts';
import { hashPassword, verifyPassword } from './passwords.ts';

export type Role = 'admin' | 'user';
export interface User {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
}
export interface ApiTokenInfo {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}

export const USER_NAME_RE = /^[a-z_][a-z0-9_.-]{0,31}$/;
export const MIN_PASSWORD = 8;
export const SESSION_TTL_MS = 12 * 3600 * 1000;

export const userNameSchema = z
  .string()
  .regex(
    USER_NAME_RE,
    'user names are 1-32 characters: lower-case letters, digits, "_", "." or "-", not starting with a digit',
  );
export const passwordSchema = z
  .string()
  .min(MIN_PASSWORD, `passwords need at least ${MIN_PASSWORD} characters`)
  .max(1024);

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const now = () => new Date().toISOString();

interface UserRow { id: string; name: string; role: Role; password_hash: string; created_at: string }
const toUser = (r: UserRow): User => ({ id: r.id, name: r.name, role: r.role, createdAt: r.created_at });

export class Users {
  constructor(private readonly db: Db) {}

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM users').get() as { n: number }).n;
  }

  async create(name: string, password: string, role: Role): Promise<User> {
    userNameSchema.parse(name);
    passwordSchema.parse(password);
    if (this.byName(name)) throw conflict(`a user named '${name}' already exists`);
    const id = randomUUID();
    this.db
      .prepare('INSERT INTO users (id, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(id, name, role, await hashPassword(password), now());
    return this.get(id)!;
  }

  get(id: string): User | undefined {
    const r = this.db.prepare('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined;
    return r && toUser(r);
  }

  byName(name: string): User | undefined {
    const r = this.db.prepare('SELECT * FROM users WHERE name = ?').get(name) as UserRow | undefined;
    return r && toUser(r);
  }

  list(): User[] {
    return (this.db.prepare('SELECT * FROM users ORDER BY name').all() as UserRow[]).map(toUser);
  }

  /** Deletes an account. Refuses the last admin and accounts that still own VMs (their VMs would be orphaned). */
  delete(name: string): void {
    const u = this.byName(name);
    if (!u) throw notFound(`no user named '${name}'`);
    if (u.role === 'admin') {
      const admins = (this.db.prepare("SELECT count(*) AS n FROM users WHERE role = 'admin'").get() as { n: number }).n;
      if (admins <= 1) throw conflict(`'${name}' is the last admin; create another admin first`);
    }
    const vms = (
      this.db.prepare('SELECT name FROM vms WHERE owner_id = ? ORDER BY name').all(u.id) as { name: string }[]
    ).map((r) => r.name);
    if (vms.length) throw conflict(`user '${name}' still owns VMs (${vms.join(', ')}): delete them first`);
    this.db.prepare('DELETE FROM users WHERE id = ?').run(u.id);
  }

  /** Checks a name and password. Hashes even for unknown names, so timing does not reveal which names exist. */
  async authenticate(name: string, password: string): Promise<User | undefined> {
    const r = this.db.prepare('SELECT * FROM users WHERE name = ?').get(name) as UserRow | undefined;
    const ok = await verifyPassword(password, r?.password_hash ?? DUMMY_HASH);
    return r && ok ? toUser(r) : undefined;
  }

  // ---- sessions (browser cookie) ----

  createSession(userId: string): { token: string; expiresAt: Date } {
    const token = randomBytes(32).toString('base64url');
    const expiresAt = new Date(Date.now() + SESSION_TTL_MS);
    this.db.prepare('DELETE FROM sessions WHERE expires_at < ?').run(now());
    this.db
      .prepare('INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)')
      .run(sha256(token), userId, now(), expiresAt.toISOString());
    return { token, expiresAt };
  }

  userForSession(token: string): User | undefined {
    const r = this.db
      .prepare(
        'SELECT u.* FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?',
      )
      .get(sha256(token), now()) as UserRow | undefined;
    return r && toUser(r);
  }

  deleteSession(token: string): void {
    this.db.prepare('DELETE FROM sessions WHERE token_hash = ?').run(sha256(token));
  }

  // ---- API tokens (CLI, scripts) ----

  createToken(userId: string, name: string): { token: string; info: ApiTokenInfo } {
    if (!name || name.length > 100) throw badRequest('a token needs a name of 1-100 characters');
    const id = randomBytes(6).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    this.db
      .prepare('INSERT INTO api_tokens (id, user_id, name, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(id, userId, name, sha256(secret), now());
    return { token: `oriel_${id}_${secret}`, info: this.tokens(userId).find((t) => t.id === id)! };
  }

  userForToken(token: string): User | undefined {
    const m = /^oriel_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/.exec(token);
    if (!m) return undefined;
    const r = this.db.prepare('SELECT user_id, secret_hash FROM api_tokens WHERE id = ?').get(m[1]) as
      { user_id: string; secret_hash: string } | undefined;
    if (!r) return undefined;
    const a = Buffer.from(sha256(m[2]!), 'hex'), b = Buffer.from(r.secret_hash, 'hex');
    if (a.length !== b.length || !timingSafeEqual(a, b)) return undefined;
    this.db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(now(), m[1]);
    return this.get(r.user_id);
  }

  tokens(userId: string): ApiTokenInfo[] {
    return (
      this.db
        .prepare('SELECT id, name, created_at, last_used_at FROM api_tokens WHERE user_id = ? ORDER BY created_at')
        .all(userId) as { id: string; name: string; created_at: string; last_used_at: string | null }[]
    ).map((r) => ({ id: r.id, name: r.name, createdAt: r.created_at, lastUsedAt: r.last_used_at }));
  }

  deleteToken(userId: string, id: string): void {
    const res = this.db.prepare('DELETE FROM api_tokens WHERE id = ? AND user_id = ?').run(id, userId);
    if (res.changes === 0) throw notFound(`no token with id '${id}'`);
  }
}

// A valid hash of a random password, so failed look-ups cost as much as real checks.
const DUMMY_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
