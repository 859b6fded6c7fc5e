// Accounts and browser sessions; API tokens are in tokens.ts, the streams their end closes in streams.ts.
//
// Sessions are random secrets of which only a SHA-256 hash is stored: they carry 256 bits of entropy, so a fast
// hash is enough (unlike passwords). A password change ends the account's other sessions and tokens; deleting an
// account ends all of them (the database cascades) and closes their streams.
import { randomBytes, randomUUID } from 'node:crypto';
import { passwordSchema, userNameSchema, type Role, type User } from '../../api/users.ts';
import type { Db } from '../../db/database.ts';
import { conflict, notFound, unauthorized } from '../../errors.ts';
import { hashPassword, secretHash, verifyPassword } from './passwords.ts';
import { CredentialStreams, type Credential } from './streams.ts';
import { ApiTokens } from './tokens.ts';

/** An account as the API shows it (src/api/users.ts). */
export type { Role, User };

export const SESSION_TTL_MS = 12 * 3600 * 1000;

const now = () => new Date().toISOString();

interface UserRow { id: string; name: string; role: Role; password_hash: string; created_at: string }
const toUser = (r: UserRow): User => ({ id: r.id, name: r.name, role: r.role, createdAt: r.created_at });

export class Users {
  /** The open streams of each credential, closed when it ends. */
  readonly streams = new CredentialStreams();
  readonly tokens: ApiTokens;

  constructor(private readonly db: Db) {
    this.tokens = new ApiTokens(db, this.streams);
  }

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

  /** Deletes an account. Refuses the last admin and accounts that still own VMs or networks (orphans otherwise). */
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
    const nets = (
      this.db.prepare('SELECT name FROM networks WHERE owner_id = ? ORDER BY name').all(u.id) as { name: string }[]
    ).map((r) => r.name);
    if (nets.length) throw conflict(`user '${name}' still owns networks (${nets.join(', ')}): delete them first`);
    const images = (this.db.prepare('SELECT name FROM uploaded_images WHERE owner_id = ? ORDER BY name').all(u.id) as
      { name: string }[]).map((r) => r.name);
    if (images.length)
      throw conflict(`user '${name}' still owns uploaded images (${images.join(', ')}): delete them first`);
    this.db.prepare('DELETE FROM users WHERE id = ?').run(u.id);
    this.streams.endUser(u.id, 'the account was deleted');
  }

  /**
   * The user's password hash if `password` is the current one, else undefined. Callers hand the hash back to
   * `setPassword`, which changes nothing if the password changed meanwhile (scrypt takes a while: an admin's reset
   * may land in between).
   */
  async checkPassword(userId: string, password: string): Promise<string | undefined> {
    const r = this.db.prepare('SELECT password_hash FROM users WHERE id = ?').get(userId) as
      { password_hash: string } | undefined;
    const ok = await verifyPassword(password, r?.password_hash ?? DUMMY_HASH);
    return r && ok ? r.password_hash : undefined;
  }

  /**
   * Sets a new password and ends every session and API token of the account (and their streams) but `keep`: the
   * credential the owner used to change it themselves. An admin's reset keeps none. With `verifiedHash` (the owner's
   * own change), nothing changes unless the password is still the one checked and `keep` is still valid (409/401).
   */
  async setPassword(userId: string, password: string, keep?: Credential, verifiedHash?: string): Promise<void> {
    passwordSchema.parse(password);
    const hash = await hashPassword(password);
    this.db.transaction(() => {
      const changed = verifiedHash === undefined
        ? this.db.prepare('UPDATE users SET password_hash = ? WHERE id = ?').run(hash, userId).changes
        : this.db.prepare('UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?')
          .run(hash, userId, verifiedHash).changes;
      if (!changed) throw conflict('the password was changed meanwhile (or the account deleted): nothing changed');
      if (keep && !this.alive(keep)) throw unauthorized('your session or token ended meanwhile: nothing changed');
      this.db.prepare('DELETE FROM sessions WHERE user_id = ? AND token_hash IS NOT ?')
        .run(userId, keep?.kind === 'session' ? keep.id : null);
      this.tokens.revokeAllOf(userId, keep?.kind === 'token' ? keep.id : undefined);
    })();
    this.streams.endUser(userId, 'the password was changed: sign in again', keep);
  }

  /** Checks a name and password, and returns the user with the hash that was checked (for `signIn`). Hashes even
   * for unknown names, so timing does not reveal which names exist. */
  async authenticate(name: string, password: string): Promise<{ user: User; passwordHash: string } | undefined> {
    const r = this.db.prepare('SELECT * FROM users WHERE name = ?').get(name) as UserRow | undefined;
    const ok = await verifyPassword(password, r?.password_hash ?? DUMMY_HASH);
    return r && ok ? { user: toUser(r), passwordHash: r.password_hash } : undefined;
  }

  /**
   * After `authenticate`: a new session (and an API token when asked), created only if the password is still the
   * one checked. A reset that landed during the check ended every credential; one made from the old password now
   * would survive it.
   */
  signIn(userId: string, passwordHash: string, token?: { name: string; expires?: string }):
    { session: { token: string; expiresAt: Date }; token?: string } {
    return this.db.transaction(() => {
      const same = this.db.prepare('SELECT 1 FROM users WHERE id = ? AND password_hash = ?').get(userId, passwordHash);
      if (!same) throw unauthorized('wrong user name or password');
      const session = this.createSession(userId);
      return { session, ...(token ? { token: this.tokens.create(userId, token.name, token.expires).token } : {}) };
    })();
  }

  // ---- sessions (browser cookie) ----

  createSession(userId: string): { token: string; expiresAt: Date } {
    const token = randomBytes(32).toString('base64url');
    const expiresAt = new Date(Date.now() + SESSION_TTL_MS);
    this.db.prepare('DELETE FROM sessions WHERE expires_at < ?').run(now());
    this.db
      .prepare('INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)')
      .run(secretHash(token), userId, now(), expiresAt.toISOString());
    return { token, expiresAt };
  }

  /** The session's user and credential, if the session is valid. */
  session(token: string): { user: User; credential: Credential } | undefined {
    const hash = secretHash(token);
    const r = this.db
      .prepare(
        'SELECT u.*, s.expires_at AS s_expires FROM sessions s JOIN users u ON u.id = s.user_id ' +
          'WHERE s.token_hash = ? AND s.expires_at > ?',
      )
      .get(hash, now()) as (UserRow & { s_expires: string }) | undefined;
    if (!r) return undefined;
    return { user: toUser(r), credential: { userId: r.id, kind: 'session', id: hash, expiresAt: r.s_expires } };
  }

  /** The token's user and credential; 401 (saying why) if it is not valid. */
  token(token: string): { user: User; credential: Credential } {
    const credential = this.tokens.authenticate(token);
    return { user: this.get(credential.userId)!, credential };
  }

  /** Whether a credential is still valid: a console ticket is only as good as the credential it was issued under. */
  alive(c: Credential): boolean {
    if (c.kind === 'token') return this.tokens.alive(c.id);
    return !!this.db.prepare('SELECT 1 FROM sessions WHERE token_hash = ? AND expires_at > ?').get(c.id, now());
  }

  deleteSession(token: string): void {
    const hash = secretHash(token);
    this.db.prepare('DELETE FROM sessions WHERE token_hash = ?').run(hash);
    this.streams.endCredential('session', hash, 'signed out');
  }
}

// A valid hash of a random password, so failed look-ups cost as much as real checks.
const DUMMY_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
