/**
 * Operators of the API and console (issue 17): users with a role and a password hash, API
 * tokens with a role and an expiry, and console sessions. Secrets are never stored: a token's
 * or session's secret is kept as its SHA-256 (it has 192 random bits, so a fast hash is right),
 * a password as an scrypt hash made by src/api/auth.ts.
 */
import type { Statements } from './common.js';
import { invalid, requireText, run, toMs } from './common.js';

export type Role = 'admin' | 'operator' | 'viewer';
export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];

export interface User {
  id: string;
  username: string;
  role: Role;
  passwordHash: string;
  disabled: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface ApiTokenRecord {
  id: string;
  userId: string | null;
  name: string;
  role: Role;
  secretHash: Uint8Array;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

export interface SessionRecord {
  id: string;
  userId: string;
  secretHash: Uint8Array;
  csrfToken: string;
  createdAt: number;
  expiresAt: number;
}

interface UserRow {
  id: string;
  username: string;
  role: Role;
  password_hash: string;
  disabled: number;
  created_at: number;
  updated_at: number;
}
interface TokenRow {
  id: string;
  user_id: string | null;
  name: string;
  role: Role;
  secret_hash: Buffer;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
}
interface SessionRow {
  id: string;
  user_id: string;
  secret_hash: Buffer;
  csrf_token: string;
  created_at: number;
  expires_at: number;
}

const userOf = (r: UserRow): User => ({ id: r.id, username: r.username, role: r.role, passwordHash: r.password_hash, disabled: r.disabled === 1, createdAt: r.created_at, updatedAt: r.updated_at });
const tokenOf = (r: TokenRow): ApiTokenRecord => ({
  id: r.id,
  userId: r.user_id,
  name: r.name,
  role: r.role,
  secretHash: Uint8Array.from(r.secret_hash),
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
  lastUsedAt: r.last_used_at,
});
const sessionOf = (r: SessionRow): SessionRecord => ({ id: r.id, userId: r.user_id, secretHash: Uint8Array.from(r.secret_hash), csrfToken: r.csrf_token, createdAt: r.created_at, expiresAt: r.expires_at });

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export function checkRole(role: unknown): Role {
  if (role !== 'admin' && role !== 'operator' && role !== 'viewer') throw invalid('role is admin, operator or viewer');
  return role;
}

export function checkUsername(name: unknown): string {
  if (typeof name !== 'string' || !USERNAME.test(name)) throw invalid('a username is 1 to 64 letters, digits, ".", "_", "@" or "-", starting with a letter or digit');
  return name;
}

export class SqliteUserRepository {
  constructor(private readonly s: Statements) {}

  count(): Promise<number> {
    return run('count users', () => this.s.get('SELECT count(*) FROM users').pluck().get() as number);
  }

  create(user: { id: string; username: string; role: Role; passwordHash: string }, now: number): Promise<User> {
    return run('create user', () => {
      const at = toMs(now);
      this.s.get('INSERT INTO users (id, username, role, password_hash, disabled, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?)').run(requireText(user.id, 'id'), checkUsername(user.username), checkRole(user.role), requireText(user.passwordHash, 'passwordHash'), at, at);
      return { id: user.id, username: user.username, role: user.role, passwordHash: user.passwordHash, disabled: false, createdAt: at, updatedAt: at };
    });
  }

  byUsername(username: string): Promise<User | null> {
    return run('find user', () => {
      const row = this.s.get('SELECT * FROM users WHERE username = ?').get(username) as UserRow | undefined;
      return row ? userOf(row) : null;
    });
  }

  byId(id: string): Promise<User | null> {
    return run('get user', () => {
      const row = this.s.get('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined;
      return row ? userOf(row) : null;
    });
  }

  list(): Promise<User[]> {
    return run('list users', () => (this.s.get('SELECT * FROM users ORDER BY username COLLATE NOCASE').all() as UserRow[]).map(userOf));
  }

  /** Changes role, password hash or disabled; a password change or disabling ends the user's sessions. */
  update(id: string, patch: { role?: Role; passwordHash?: string; disabled?: boolean }, now: number): Promise<User | null> {
    return run('update user', () =>
      this.s.transaction(() => {
        const row = this.s.get('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined;
        if (!row) return null;
        const next = { role: patch.role === undefined ? row.role : checkRole(patch.role), hash: patch.passwordHash ?? row.password_hash, disabled: patch.disabled === undefined ? row.disabled : patch.disabled ? 1 : 0 };
        this.s.get('UPDATE users SET role = ?, password_hash = ?, disabled = ?, updated_at = ? WHERE id = ?').run(next.role, next.hash, next.disabled, toMs(now), id);
        if (patch.passwordHash !== undefined || patch.disabled === true || (patch.role !== undefined && patch.role !== row.role)) this.s.get('DELETE FROM console_sessions WHERE user_id = ?').run(id);
        return userOf({ ...row, role: next.role, password_hash: next.hash, disabled: next.disabled, updated_at: toMs(now) });
      }),
    );
  }

  /** Removes the user with their tokens and sessions. */
  remove(id: string): Promise<boolean> {
    return run('remove user', () => this.s.get('DELETE FROM users WHERE id = ?').run(id).changes > 0);
  }

  /** Admins who are not disabled (the last one cannot be removed, demoted or disabled). */
  activeAdmins(): Promise<number> {
    return run('count admins', () => this.s.get("SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0").pluck().get() as number);
  }

  // ---- API tokens

  addToken(t: Omit<ApiTokenRecord, 'revokedAt' | 'lastUsedAt'>): Promise<void> {
    return run('add token', () => {
      if (t.expiresAt <= t.createdAt) throw invalid('a token must expire after it is made');
      this.s.get('INSERT INTO api_tokens (id, user_id, name, role, secret_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(t.id, t.userId, requireText(t.name, 'name'), checkRole(t.role), Buffer.from(t.secretHash), t.createdAt, t.expiresAt);
    });
  }

  token(id: string): Promise<ApiTokenRecord | null> {
    return run('get token', () => {
      const row = this.s.get('SELECT * FROM api_tokens WHERE id = ?').get(id) as TokenRow | undefined;
      return row ? tokenOf(row) : null;
    });
  }

  /** Tokens, newest first; of one user when userId is given. */
  tokens(userId?: string): Promise<ApiTokenRecord[]> {
    return run('list tokens', () => {
      const rows = userId === undefined ? this.s.get('SELECT * FROM api_tokens ORDER BY created_at DESC, id').all() : this.s.get('SELECT * FROM api_tokens WHERE user_id = ? ORDER BY created_at DESC, id').all(userId);
      return (rows as TokenRow[]).map(tokenOf);
    });
  }

  revokeToken(id: string, now: number): Promise<boolean> {
    return run('revoke token', () => this.s.get('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(toMs(now), id).changes > 0);
  }

  /** Last use, written at most once a minute per token (a read-mostly API does not write on every request). */
  touchToken(id: string, now: number): Promise<void> {
    return run('touch token', () => {
      this.s.soft(() => this.s.get('UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)').run(now, id, now - 60_000));
    });
  }

  // ---- console sessions

  addSession(session: SessionRecord): Promise<void> {
    return run('add session', () => {
      this.s.get('DELETE FROM console_sessions WHERE expires_at <= ?').run(session.createdAt);
      this.s.get('INSERT INTO console_sessions (id, user_id, secret_hash, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)').run(session.id, session.userId, Buffer.from(session.secretHash), session.csrfToken, session.createdAt, session.expiresAt);
    });
  }

  session(id: string): Promise<SessionRecord | null> {
    return run('get session', () => {
      const row = this.s.get('SELECT * FROM console_sessions WHERE id = ?').get(id) as SessionRow | undefined;
      return row ? sessionOf(row) : null;
    });
  }

  removeSession(id: string): Promise<boolean> {
    return run('remove session', () => this.s.get('DELETE FROM console_sessions WHERE id = ?').run(id).changes > 0);
  }
}
