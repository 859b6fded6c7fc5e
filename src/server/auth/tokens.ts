// API tokens (CLI, scripts): `oriel_<id>_<secret>`. The prefix makes a leaked token easy to find with grep or a
// secret scanner; the id finds its row without a scan and names the token in lists and revocations. Only a SHA-256
// hash of the secret is stored: it carries 256 bits of entropy, so a fast hash is enough (unlike passwords).
//
// Each token has a name, created / last-used / expiry times (DEFAULT_TOKEN_EXPIRY unless asked otherwise, or
// never), and may be revoked. An expired token is refused with the date it expired, and is forgotten
// FORGET_EXPIRED_MS later. Revoking or expiring a token also closes the streams opened with it (streams.ts).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { DEFAULT_TOKEN_EXPIRY, tokenExpiryMs, tokenExpirySchema, type Token } from '../../api/tokens.ts';
import type { Db } from '../../db/database.ts';
import { OrielError, badRequest, notFound, unauthorized } from '../../errors.ts';
import type { Credential, CredentialStreams } from './streams.ts';
import { secretHash } from './passwords.ts';

/** A token as lists show it (src/api/tokens.ts), less `current`, which depends on the request. */
export type ApiTokenInfo = Omit<Token, 'current'>;

/** Live (unexpired) tokens one user may hold: the table and `GET /api/tokens` stay bounded. */
export const MAX_TOKENS_PER_USER = 100;
const FORGET_EXPIRED_MS = 30 * 86_400_000;

/** The lifetime in ms of `30d`, `12h`, ...; null for `never`. */
export function expiryMs(s: string): number | null {
  if (s === 'never') return null;
  const ms = tokenExpiryMs(s);
  if (ms === null) throw badRequest(`not a token lifetime: '${s}'`);
  return ms;
}

const TOKEN_RE = /^oriel_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

interface TokenRow {
  id: string;
  user_id: string;
  user_name: string;
  name: string;
  secret_hash: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
}

const SELECT = 'SELECT t.*, u.name AS user_name FROM api_tokens t JOIN users u ON u.id = t.user_id';

export class ApiTokens {
  constructor(
    private readonly db: Db,
    private readonly streams: CredentialStreams,
    private readonly now: () => number = Date.now,
  ) {}

  private iso(ms = this.now()): string {
    return new Date(ms).toISOString();
  }

  private info(r: TokenRow): ApiTokenInfo {
    return {
      id: r.id, name: r.name, user: r.user_name, createdAt: r.created_at, lastUsedAt: r.last_used_at,
      expiresAt: r.expires_at, expired: r.expires_at !== null && r.expires_at <= this.iso(),
    };
  }

  /** Issues a token; the secret is in this answer only. `expires`: `90d`, `12h`, `never`, ... */
  create(userId: string, name: string, expires: string = DEFAULT_TOKEN_EXPIRY): { token: string; info: ApiTokenInfo } {
    if (!name || name.length > 100) throw badRequest('a token needs a name of 1-100 characters');
    const parsed = tokenExpirySchema.safeParse(expires);
    if (!parsed.success) throw badRequest(parsed.error.issues.map((i) => i.message).join('; '));
    const life = expiryMs(expires);
    this.db.prepare('DELETE FROM api_tokens WHERE expires_at < ?').run(this.iso(this.now() - FORGET_EXPIRED_MS));
    const live = this.db
      .prepare('SELECT COUNT(*) AS n FROM api_tokens WHERE user_id = ? AND (expires_at IS NULL OR expires_at > ?)')
      .get(userId, this.iso()) as { n: number };
    if (live.n >= MAX_TOKENS_PER_USER) {
      throw new OrielError(429, `too many API tokens (${MAX_TOKENS_PER_USER}): revoke some first (oriel token list)`,
        'too_many');
    }
    const id = randomBytes(6).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    this.db
      .prepare(
        'INSERT INTO api_tokens (id, user_id, name, secret_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(id, userId, name, secretHash(secret), this.iso(), life === null ? null : this.iso(this.now() + life));
    return { token: `oriel_${id}_${secret}`, info: this.get(id)! };
  }

  get(id: string): ApiTokenInfo | undefined {
    const r = this.db.prepare(`${SELECT} WHERE t.id = ?`).get(id) as TokenRow | undefined;
    return r && this.info(r);
  }

  /** The user id and credential of a valid token, or 401 saying why not (expired: when). */
  authenticate(token: string): Credential {
    const bad = () => unauthorized('the API token is not valid (revoked, mistyped, or from another server)');
    const m = TOKEN_RE.exec(token);
    if (!m) throw bad();
    const r = this.db.prepare(`${SELECT} WHERE t.id = ?`).get(m[1]) as TokenRow | undefined;
    if (!r) throw bad();
    const a = Buffer.from(secretHash(m[2]!), 'hex'), b = Buffer.from(r.secret_hash, 'hex');
    if (a.length !== b.length || !timingSafeEqual(a, b)) throw bad();
    const now = this.iso();
    if (r.expires_at !== null && r.expires_at <= now) {
      throw unauthorized(`the API token expired on ${r.expires_at}: sign in again (oriel login)`);
    }
    this.db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(now, r.id);
    return { userId: r.user_id, kind: 'token', id: r.id, expiresAt: r.expires_at };
  }

  /** Whether a token credential is still valid (not revoked, not expired). */
  alive(id: string): boolean {
    const r = this.db.prepare('SELECT expires_at FROM api_tokens WHERE id = ?').get(id) as
      { expires_at: string | null } | undefined;
    return !!r && (r.expires_at === null || r.expires_at > this.iso());
  }

  /** One user's tokens, or everyone's (`userId` undefined), oldest first. */
  list(userId?: string): ApiTokenInfo[] {
    const rows = (
      userId === undefined
        ? this.db.prepare(`${SELECT} ORDER BY t.created_at, t.id`).all()
        : this.db.prepare(`${SELECT} WHERE t.user_id = ? ORDER BY t.created_at, t.id`).all(userId)
    ) as TokenRow[];
    return rows.map((r) => this.info(r));
  }

  /** Revokes a token of `userId` (any user's when `userId` is undefined: admins); 404 otherwise, whoever owns it. */
  revoke(id: string, userId?: string): ApiTokenInfo {
    const info = this.get(id);
    const owner = (this.db.prepare('SELECT user_id FROM api_tokens WHERE id = ?').get(id) as
      { user_id: string } | undefined)?.user_id;
    if (!info || (userId !== undefined && owner !== userId)) throw notFound(`no token with id '${id}'`);
    this.db.prepare('DELETE FROM api_tokens WHERE id = ?').run(id);
    this.streams.endCredential('token', id, 'the API token was revoked');
    return info;
  }

  /** Revokes every token of a user but `keep` (a password change). Their streams end with the caller's reason. */
  revokeAllOf(userId: string, keep?: string): number {
    return this.db.prepare('DELETE FROM api_tokens WHERE user_id = ? AND id IS NOT ?').run(userId, keep ?? null)
      .changes;
  }
}
