/**
 * Operator accounts in the API (issue 17): login (console sessions and API tokens for the
 * CLI), users, tokens, the audit log, and the fleet counts the console's dashboard and device
 * table read. Authorization is auth.ts's default rule (users, tokens and audit need admin);
 * the few routes any signed-in principal may use say `role: 'viewer'`.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AuthFailureThrottle, DUMMY_PASSWORD_HASH, SESSION_COOKIE, hashPassword, newApiToken, newId, newSession, principalOf, problem, sourceKey, verifyPassword, type AccountsPort, type Principal } from './auth.js';
import type { RouteSpec } from './server.js';
import { StoreError } from '../store/errors.js';
import type { ApiTokenRecord, Role, User } from '../store/sqlite/users.js';
import type { DeviceSort, SqliteFleetSummary } from '../store/sqlite/fleet-summary.js';

export interface AdminApiOptions {
  accounts: AccountsPort;
  fleet?: SqliteFleetSummary;
  now: () => number;
  /** Console session lifetime, ms (default 12 h). */
  sessionTtlMs?: number;
  /** Login throttling per account: failures within the window that lock the account for lockoutMs. */
  accountThrottle?: { maxFailures?: number; windowMs?: number; lockoutMs?: number };
  /** Login throttling per source address (default 20 failures a minute lock it 5 minutes). */
  sourceThrottle?: AuthFailureThrottle;
  /** Mark the session cookie Secure: 'auto' (default) when the request came over TLS. */
  secureCookie?: boolean | 'auto';
}

const roleSchema = { type: 'string', enum: ['admin', 'operator', 'viewer'] };
const usernameSchema = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]*$' };
/** Long enough to resist guessing; bounded so hashing cannot be made expensive. */
const passwordSchema = { type: 'string', minLength: 10, maxLength: 1024 };
const tokenNameSchema = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]+$' };
const DAY = 86_400_000;

export const MIN_PASSWORD_LENGTH = 10;

function userJson(u: User) {
  return { id: u.id, username: u.username, role: u.role, disabled: u.disabled, createdAt: new Date(u.createdAt).toISOString(), updatedAt: new Date(u.updatedAt).toISOString() };
}

function tokenJson(t: ApiTokenRecord, users: Map<string, string>, now: number) {
  const iso = (n: number | null) => (n === null ? null : new Date(n).toISOString());
  return {
    id: t.id,
    name: t.name,
    role: t.role,
    username: t.userId === null ? null : (users.get(t.userId) ?? null),
    createdAt: iso(t.createdAt),
    expiresAt: iso(t.expiresAt),
    revokedAt: iso(t.revokedAt),
    lastUsedAt: iso(t.lastUsedAt),
    state: t.revokedAt !== null ? 'revoked' : t.expiresAt <= now ? 'expired' : 'active',
  };
}

/** Failed logins per account name, bounded like the per-source throttle. */
class AccountThrottle {
  private readonly inner: AuthFailureThrottle;
  constructor(o: AdminApiOptions['accountThrottle'] = {}) {
    this.inner = new AuthFailureThrottle({ maxFailures: o.maxFailures ?? 5, windowMs: o.windowMs ?? 15 * 60_000, lockoutMs: o.lockoutMs ?? 15 * 60_000, maxTrackedSources: 10_000 });
  }
  lockedFor(name: string, now: number) {
    return this.inner.lockedFor(name.toLowerCase(), now);
  }
  fail(name: string, now: number) {
    this.inner.recordFailure(name.toLowerCase(), now);
  }
}

/**
 * The first admin, when there are no users yet: named DEPOT_ADMIN_USER (default "admin"), with
 * the password DEPOT_ADMIN_PASSWORD, or a random one returned here to be shown once.
 */
export async function ensureFirstAdmin(accounts: AccountsPort, now: number, env: NodeJS.ProcessEnv = process.env): Promise<{ username: string; password?: string; fromEnv: boolean } | undefined> {
  if ((await accounts.users.count()) > 0) return undefined;
  const username = env.DEPOT_ADMIN_USER || 'admin';
  const given = env.DEPOT_ADMIN_PASSWORD;
  if (given !== undefined && given.length < MIN_PASSWORD_LENGTH) throw new Error(`DEPOT_ADMIN_PASSWORD must have at least ${MIN_PASSWORD_LENGTH} characters`);
  const password = given || randomBytes(15).toString('base64url');
  await accounts.users.create({ id: newId(), username, role: 'admin', passwordHash: await hashPassword(password) }, now);
  await accounts.audit.record({ at: now, actor: 'depot', role: null, action: 'create first admin', target: username, outcome: 'done', source: null, detail: given ? 'password from DEPOT_ADMIN_PASSWORD' : 'generated password shown once at start' });
  return given ? { username, fromEnv: true } : { username, password, fromEnv: false };
}

export function adminRoutes(options: AdminApiOptions): RouteSpec[] {
  const { accounts, now } = options;
  const { users, audit } = accounts;
  const sessionTtl = options.sessionTtlMs ?? 12 * 3_600_000;
  const accountThrottle = new AccountThrottle(options.accountThrottle);
  const sourceThrottle = options.sourceThrottle ?? new AuthFailureThrottle({ maxFailures: 20, windowMs: 60_000, lockoutMs: 5 * 60_000 });
  const param = (request: FastifyRequest, name: string) => (request.params as Record<string, string>)[name]!;
  const me = (request: FastifyRequest): Principal => principalOf(request)!;
  const record = (request: FastifyRequest, actor: string, action: string, target: string | null, outcome: string, detail: string | null = null) =>
    audit.record({ at: now(), actor, role: principalOf(request)?.role ?? null, action, target, outcome, source: sourceKey(request.ip), detail });
  const requireUser = async (username: string): Promise<User> => {
    const user = await users.byUsername(username);
    if (!user) throw new StoreError('NOT_FOUND', `no user "${username}"`);
    return user;
  };
  /** The last active admin stays: removing, demoting or disabling it would lock everyone out of user management. */
  const keepAnAdmin = async (user: User, next: { role?: Role; disabled?: boolean; removed?: boolean }) => {
    if (user.role !== 'admin' || user.disabled) return;
    const losesAdmin = next.removed === true || next.disabled === true || (next.role !== undefined && next.role !== 'admin');
    if (losesAdmin && (await users.activeAdmins()) <= 1) throw new StoreError('CONFLICT', `"${user.username}" is the last admin: make another admin first`);
  };
  const cookie = (request: FastifyRequest, value: string, maxAgeSec: number) => {
    const secure = options.secureCookie === true || ((options.secureCookie ?? 'auto') === 'auto' && request.protocol === 'https');
    return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSec}${secure ? '; Secure' : ''}`;
  };
  const usernames = async () => new Map((await users.list()).map((u) => [u.id, u.username]));

  const login: RouteSpec = {
    method: 'POST',
    url: '/api/v1/login',
    summary:
      'Sign in with a username and password: a console session (HttpOnly, SameSite=Strict cookie; the answer carries the CSRF token for unsafe requests), or with `token`, a new API token of your role for scripts and `depot login`. Throttled per account and per source address',
    public: true,
    body: {
      type: 'object',
      required: ['username', 'password'],
      additionalProperties: false,
      properties: {
        username: { type: 'string', minLength: 1, maxLength: 64 },
        password: { type: 'string', minLength: 1, maxLength: 1024 },
        token: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: tokenNameSchema, days: { type: 'integer', minimum: 1, maximum: 365 } } },
      },
    },
    handler: async (request: FastifyRequest, reply: FastifyReply) => {
      const b = request.body as { username: string; password: string; token?: { name: string; days?: number } };
      const source = sourceKey(request.ip);
      const t = now();
      const wait = Math.max(sourceThrottle.lockedFor(source, t), accountThrottle.lockedFor(b.username, t));
      if (wait > 0) {
        await record(request, `login:${b.username.slice(0, 64)}`, 'login', b.username.slice(0, 64), 'throttled');
        return problem(reply.header('retry-after', String(Math.ceil(wait / 1000))), 429, 'TOO_MANY_FAILED_LOGINS', 'Too Many Requests', 'too many failed sign-ins for this account or from this address; retry later');
      }
      const user = await users.byUsername(b.username);
      // An unknown name costs a hash too, so timing does not tell names apart.
      const ok = await verifyPassword(b.password, user?.passwordHash ?? DUMMY_PASSWORD_HASH);
      if (!user || !ok || user.disabled) {
        sourceThrottle.recordFailure(source, t);
        accountThrottle.fail(b.username, t);
        await record(request, `login:${b.username.slice(0, 64)}`, 'login', b.username.slice(0, 64), 'refused');
        return problem(reply, 401, 'LOGIN_FAILED', 'Unauthorized', 'wrong username or password (or the account is disabled)');
      }
      if (b.token) {
        const made = newApiToken();
        const expiresAt = t + (b.token.days ?? 90) * DAY;
        await users.addToken({ id: made.id, userId: user.id, name: b.token.name, role: user.role, secretHash: made.secretHash, createdAt: t, expiresAt });
        await record(request, `user:${user.username}`, 'login (API token)', `token:${b.token.name}`, 'done');
        return reply.code(201).send({ token: made.token, id: made.id, name: b.token.name, role: user.role, username: user.username, expiresAt: new Date(expiresAt).toISOString() });
      }
      const session = newSession();
      await users.addSession({ id: session.id, userId: user.id, secretHash: session.secretHash, csrfToken: session.csrfToken, createdAt: t, expiresAt: t + sessionTtl });
      await record(request, `user:${user.username}`, 'login (console session)', null, 'done');
      reply.header('set-cookie', cookie(request, session.cookie, Math.floor(sessionTtl / 1000))).header('cache-control', 'no-store');
      return { username: user.username, role: user.role, csrfToken: session.csrfToken, expiresAt: new Date(t + sessionTtl).toISOString() };
    },
  };

  return [
    login,
    {
      method: 'POST',
      url: '/api/v1/logout',
      summary: 'End the console session (its cookie is cleared)',
      role: 'viewer',
      handler: async (request, reply) => {
        const p = me(request);
        if (p.sessionId) await users.removeSession(p.sessionId);
        reply.header('set-cookie', cookie(request, '', 0));
        return { signedOut: p.sessionId !== undefined };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/session',
      summary: 'Who you are: your role, and for a console session its CSRF token',
      role: 'viewer',
      handler: async (request, reply) => {
        const p = me(request);
        reply.header('cache-control', 'no-store');
        return { actor: p.actor, kind: p.kind, username: p.username, role: p.role, ...(p.csrfToken ? { csrfToken: p.csrfToken } : {}) };
      },
    },
    {
      method: 'POST',
      url: '/api/v1/session/password',
      summary: 'Change your own password (your console sessions end)',
      role: 'viewer',
      body: { type: 'object', required: ['current', 'password'], additionalProperties: false, properties: { current: { type: 'string', maxLength: 1024 }, password: passwordSchema } },
      handler: async (request, reply) => {
        const p = me(request);
        const user = p.userId ? await users.byId(p.userId) : null;
        if (!user) return problem(reply, 400, 'NOT_A_USER', 'Bad Request', `${p.actor} is not a user with a password`);
        const b = request.body as { current: string; password: string };
        if (!(await verifyPassword(b.current, user.passwordHash))) return problem(reply, 403, 'WRONG_PASSWORD', 'Forbidden', 'the current password is wrong');
        await users.update(user.id, { passwordHash: await hashPassword(b.password) }, now());
        return { changed: true };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/users',
      summary: 'Users and their roles (admin)',
      handler: async () => ({ users: (await users.list()).map(userJson) }),
    },
    {
      method: 'POST',
      url: '/api/v1/users',
      summary: 'Add a user with a role (admin)',
      body: { type: 'object', required: ['username', 'role', 'password'], additionalProperties: false, properties: { username: usernameSchema, role: roleSchema, password: passwordSchema } },
      handler: async (request, reply) => {
        const b = request.body as { username: string; role: Role; password: string };
        if (await users.byUsername(b.username)) throw new StoreError('CONFLICT', `user "${b.username}" exists`);
        const user = await users.create({ id: newId(), username: b.username, role: b.role, passwordHash: await hashPassword(b.password) }, now());
        return reply.code(201).send(userJson(user));
      },
    },
    {
      method: 'POST',
      url: '/api/v1/users/:username/update',
      summary: "Change a user's role, password or disabled flag (admin); their console sessions end",
      params: { username: 'Username' },
      body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { role: roleSchema, password: passwordSchema, disabled: { type: 'boolean' } } },
      handler: async (request) => {
        const user = await requireUser(param(request, 'username'));
        const b = request.body as { role?: Role; password?: string; disabled?: boolean };
        await keepAnAdmin(user, b);
        const updated = await users.update(user.id, { ...(b.role ? { role: b.role } : {}), ...(b.disabled !== undefined ? { disabled: b.disabled } : {}), ...(b.password ? { passwordHash: await hashPassword(b.password) } : {}) }, now());
        return userJson(updated!);
      },
    },
    {
      method: 'POST',
      url: '/api/v1/users/:username/remove',
      summary: 'Remove a user with their tokens and sessions (admin; not the last admin)',
      params: { username: 'Username' },
      handler: async (request) => {
        const user = await requireUser(param(request, 'username'));
        await keepAnAdmin(user, { removed: true });
        await users.remove(user.id);
        return { removed: true };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/tokens',
      summary: 'API tokens (never their secrets): name, role, owner, expiry, state (admin)',
      handler: async () => {
        const names = await usernames();
        const t = now();
        return { tokens: (await users.tokens()).map((tok) => tokenJson(tok, names, t)) };
      },
    },
    {
      method: 'POST',
      url: '/api/v1/tokens',
      summary: 'Make an API token with a role and an expiry (admin); the token is in this answer only. With username it belongs to that user (never more than their role)',
      body: { type: 'object', required: ['name', 'role'], additionalProperties: false, properties: { name: tokenNameSchema, role: roleSchema, days: { type: 'integer', minimum: 1, maximum: 3650 }, username: usernameSchema } },
      handler: async (request, reply) => {
        const b = request.body as { name: string; role: Role; days?: number; username?: string };
        const owner = b.username ? await requireUser(b.username) : null;
        const t = now();
        const made = newApiToken();
        const expiresAt = t + (b.days ?? 90) * DAY;
        await users.addToken({ id: made.id, userId: owner?.id ?? null, name: b.name, role: b.role, secretHash: made.secretHash, createdAt: t, expiresAt });
        return reply.code(201).send({ token: made.token, ...tokenJson({ id: made.id, userId: owner?.id ?? null, name: b.name, role: b.role, secretHash: made.secretHash, createdAt: t, expiresAt, revokedAt: null, lastUsedAt: null }, await usernames(), t) });
      },
    },
    {
      method: 'POST',
      url: '/api/v1/tokens/:id/revoke',
      summary: 'Revoke an API token (admin); it is refused from now on',
      params: { id: 'Token id (the part after dpt_)' },
      handler: async (request) => {
        if (!(await users.revokeToken(param(request, 'id'), now()))) throw new StoreError('NOT_FOUND', `no active token ${param(request, 'id')}`);
        return { revoked: true };
      },
    },
    {
      method: 'GET',
      url: '/api/v1/audit',
      summary: 'The audit log, newest first: who changed what, when, on what, from where, and the outcome (admin)',
      query: { limit: { type: 'integer', minimum: 1, maximum: 1000 }, before: { type: 'string', pattern: '^[1-9]\\d{0,15}$' }, actor: { type: 'string', maxLength: 200 } },
      handler: async (request) => {
        const q = request.query as { limit?: number; before?: string; actor?: string };
        const page = await audit.list({ ...(q.limit ? { limit: q.limit } : {}), ...(q.before ? { before: Number(q.before) } : {}), ...(q.actor ? { actor: q.actor } : {}) });
        return { entries: page.items.map((e) => ({ ...e, at: new Date(e.at).toISOString() })), next: page.next };
      },
    },
    ...fleetRoutes(options.fleet, now),
  ];
}

function fleetRoutes(fleet: SqliteFleetSummary | undefined, now: () => number): RouteSpec[] {
  if (!fleet) return [];
  return [
    {
      method: 'GET',
      url: '/api/v1/fleet/summary',
      summary: 'Fleet at a glance: devices by make, model and OS; installs in progress and by state; failures by reason; pending bootstrap; queued operations',
      handler: async () => fleet.summary(now()),
    },
    {
      method: 'GET',
      url: '/api/v1/fleet/devices',
      summary: 'The device table: search (start of endpoint, make or model), sort on a column, page by offset; with the total',
      query: {
        q: { type: 'string', maxLength: 255, pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]*$' },
        sort: { type: 'string', enum: ['endpoint', 'manufacturer', 'model', 'os', 'firmware', 'lastSeen'] },
        dir: { type: 'string', enum: ['asc', 'desc'] },
        limit: { type: 'integer', minimum: 1, maximum: 500 },
        offset: { type: 'integer', minimum: 0, maximum: 10_000_000 },
      },
      handler: async (request) => {
        const q = request.query as { q?: string; sort?: DeviceSort; dir?: 'asc' | 'desc'; limit?: number; offset?: number };
        const t = now();
        const page = await fleet.devices({ ...(q.q ? { q: q.q } : {}), sort: q.sort ?? 'endpoint', desc: q.dir === 'desc', limit: q.limit ?? 50, offset: q.offset ?? 0 });
        return {
          total: page.total,
          offset: q.offset ?? 0,
          devices: page.devices.map((d) => ({ ...d, state: d.expiresAt > t ? 'registered' : 'expired', lastSeenAt: new Date(d.lastSeenAt).toISOString(), expiresAt: new Date(d.expiresAt).toISOString() })),
        };
      },
    },
  ];
}
