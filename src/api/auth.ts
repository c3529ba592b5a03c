/**
 * API authentication and authorization: deny by default. Every route gets the bearer-token check as its own
 * onRequest hook (added by an onRoute hook, so a route registered later is covered too)
 * unless it is declared with `config: { public: true }`; requests the router matched to no
 * route need the token as well, so a 404 tells an anonymous caller nothing. The decision is
 * made on the route the router chose, never on the raw request URL (which may be
 * percent-encoded, dot-segmented or in absolute form).
 *
 * Failed authentications are throttled per source address (see AuthFailureThrottle).
 *
 * Who (issue 17): the shared bearer token of `depot serve` (an admin, kept for compatibility),
 * API tokens `dpt_<id>_<secret>` with a role and an expiry, and console sessions (an HttpOnly,
 * SameSite=Strict cookie; unsafe methods also need the session's CSRF token in X-CSRF-Token).
 * What: every route has an access level — `public`, `viewer`, `operator` or `admin` — from
 * `config.role` (or `config.public`) when the route says, else from the default rule
 * (defaultAccess): /api/v1/admin/**, users, tokens and the audit log need admin; GET and
 * HEAD need viewer; every other method needs operator. So a route added by anyone, anywhere,
 * is covered. Roles are ordered: admin may do what operator may, operator what viewer may.
 * Every unsafe request by a known principal goes to the audit log (who, what, on what, when,
 * outcome), refused ones included. Refusals are application/problem+json (RFC 9457).
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { SqliteAuditRepository } from '../store/sqlite/audit.js';
import type { Role, SqliteUserRepository } from '../store/sqlite/users.js';

export type { Role } from '../store/sqlite/users.js';

export interface AuthThrottleOptions {
  /** Failed authentications from one source within `windowMs` that lock it out. */
  maxFailures: number;
  windowMs: number;
  /** How long a locked-out source gets 429 on every protected route. */
  lockoutMs: number;
  /** Most sources remembered; past it the least recently failing one is forgotten. */
  maxTrackedSources: number;
}

export const DEFAULT_AUTH_THROTTLE: AuthThrottleOptions = { maxFailures: 10, windowMs: 60_000, lockoutMs: 5 * 60_000, maxTrackedSources: 10_000 };

interface SourceState {
  failures: number;
  windowStart: number;
  lockedUntil: number;
}

/**
 * Failed-authentication counts per source, bounded: entries expire, and when the map is
 * full the least recently failing source is dropped (Map order is insertion order, and a
 * failure re-inserts its source), so many addresses cannot grow memory without limit.
 */
export class AuthFailureThrottle {
  private readonly sources = new Map<string, SourceState>();
  readonly options: AuthThrottleOptions;

  constructor(options: Partial<AuthThrottleOptions> = {}) {
    this.options = { ...DEFAULT_AUTH_THROTTLE, ...options };
  }

  /** Milliseconds the source stays locked out, 0 when it is not. */
  lockedFor(source: string, now: number): number {
    const state = this.sources.get(source);
    if (!state) return 0;
    if (state.lockedUntil > now) return state.lockedUntil - now;
    if (this.expired(state, now)) this.sources.delete(source);
    return 0;
  }

  recordFailure(source: string, now: number): void {
    let state = this.sources.get(source);
    this.sources.delete(source);
    if (!state || this.expired(state, now) || now - state.windowStart >= this.options.windowMs) state = { failures: 0, windowStart: now, lockedUntil: 0 };
    state.failures += 1;
    if (state.failures >= this.options.maxFailures) state.lockedUntil = now + this.options.lockoutMs;
    while (this.sources.size >= this.options.maxTrackedSources) this.sources.delete(this.sources.keys().next().value!);
    this.sources.set(source, state);
  }

  /** Sources remembered now (for tests and metrics). */
  get size(): number {
    return this.sources.size;
  }

  private expired(state: SourceState, now: number): boolean {
    return state.lockedUntil <= now && now - state.windowStart >= this.options.windowMs;
  }
}

/**
 * The throttling key of a peer address: IPv4 as it is (also when IPv4-mapped), IPv6 by its
 * /64 prefix, since one host usually owns a whole /64 and can rotate through it. Source ports
 * play no part.
 */
export function sourceKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('%')[0]!.toLowerCase().split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = address.includes('::') ? (tail ? tail.split(':') : []) : [];
  // An embedded IPv4 tail (::a.b.c.d) is two groups; only the first four groups count here.
  const tailCount = tailGroups.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const groups = address.includes('::') ? [...headGroups, ...new Array<string>(8 - headGroups.length - tailCount).fill('0'), ...tailGroups] : headGroups;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** Who may reach a route. */
export type Access = Role | 'public';

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

/** Whether `role` may do what `needed` allows. */
export function roleAllows(role: Role, needed: Role): boolean {
  return RANK[role] >= RANK[needed];
}

/** Routes under these prefixes need admin whatever their method. */
const ADMIN_PATHS = /^\/api\/v1\/(admin|users|tokens|audit)(\/|$)/;

/**
 * The default rule, for a route that does not say (`config.role`): admin areas need admin,
 * reads (GET, HEAD) need viewer, everything else operator.
 */
export function defaultAccess(method: string, url: string): Role {
  if (ADMIN_PATHS.test(url)) return 'admin';
  return method === 'GET' || method === 'HEAD' ? 'viewer' : 'operator';
}

/** A registered route as the authorization saw it. */
export interface SeenRoute {
  method: string;
  url: string;
  public: boolean;
  /** What the route needs: 'public', or the least role. */
  access: Access;
}

/** A route's `config` as the authorization reads it. */
export interface AccessConfig {
  public?: boolean;
  /** Overrides the default rule. */
  role?: Role;
}

/** Who made a request. */
export interface Principal {
  kind: 'shared-token' | 'token' | 'session';
  /** For logs and the audit log: "user:alice", "token:ci-deploy (alice)", "shared-token". */
  actor: string;
  role: Role;
  userId: string | null;
  username: string | null;
  tokenId?: string;
  sessionId?: string;
  csrfToken?: string;
}

/** Users, tokens, sessions and the audit log (SqliteStore's repositories). */
export interface AccountsPort {
  users: SqliteUserRepository;
  audit: SqliteAuditRepository;
}

export interface AuthorizationOptions {
  token: string;
  now: () => number;
  throttle: AuthFailureThrottle;
  /** Without it only the shared token is known (no users, no audit log). */
  accounts?: AccountsPort;
}

const routesByApp = new WeakMap<FastifyInstance, SeenRoute[]>();
const principals = new WeakMap<FastifyRequest, Principal>();

/** Every route registered on the app (after `createApi`), with what it needs: what the authorization tests enumerate. */
export function registeredRoutes(app: FastifyInstance): readonly SeenRoute[] {
  return routesByApp.get(app) ?? [];
}

/** Who made the request (after authorization ran; undefined on public routes without credentials). */
export function principalOf(request: FastifyRequest): Principal | undefined {
  return principals.get(request);
}

export const SESSION_COOKIE = 'depot_session';
const UNSAFE = (method: string) => method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';

/** An RFC 9457 problem document; `error` and `message` repeat the code and detail for older clients. */
export function problem(reply: FastifyReply, status: number, error: string, title: string, detail: string): FastifyReply {
  return reply.code(status).type('application/problem+json').send({ type: 'about:blank', title, status, detail, error, message: detail });
}

/** Installs deny-by-default authorization on `app`; call before any route is added. */
export function installAuthorization(app: FastifyInstance, options: AuthorizationOptions): void {
  // Digests of equal length, so the comparison is constant-time whatever the length given.
  const expected = digest(options.token);
  const seen: SeenRoute[] = [];
  routesByApp.set(app, seen);
  const { accounts } = options;
  const checks = new WeakSet<object>();

  const refuse = (request: FastifyRequest, reply: FastifyReply, status: 401 | 429, headers: Record<string, string>, error: string, message: string): FastifyReply => {
    // A refused request's body is not worth reading (an anonymous upload, say): close after answering.
    if (hasBody(request)) reply.header('connection', 'close');
    return problem(reply.headers(headers), status, error, status === 401 ? 'Unauthorized' : 'Too Many Requests', message);
  };

  /** The principal the credentials name, or null when they name none (wrong, expired, revoked). */
  const authenticate = async (request: FastifyRequest, now: number): Promise<Principal | null | 'none'> => {
    const header = request.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer +(\S+) *$/i.exec(header);
      if (!match) return null;
      const given = match[1]!;
      if (timingSafeEqual(digest(given), expected)) return { kind: 'shared-token', actor: 'shared-token', role: 'admin', userId: null, username: null };
      const parsed = /^dpt_([A-Za-z0-9_-]{16})_([A-Za-z0-9_-]{32})$/.exec(given);
      if (!parsed || !accounts) return null;
      const record = await accounts.users.token(parsed[1]!);
      if (!record || !timingSafeEqual(digest(parsed[2]!), Buffer.from(record.secretHash)) || record.revokedAt !== null || record.expiresAt <= now) return null;
      const user = record.userId === null ? null : await accounts.users.byId(record.userId);
      if (record.userId !== null && (!user || user.disabled)) return null;
      // A token never has more than its user has now (a demoted user's tokens are demoted too).
      const role = user && !roleAllows(user.role, record.role) ? user.role : record.role;
      void accounts.users.touchToken(record.id, now).catch(() => undefined);
      return { kind: 'token', actor: `token:${record.name}${user ? ` (${user.username})` : ''}`, role, userId: user?.id ?? null, username: user?.username ?? null, tokenId: record.id };
    }
    const cookie = cookieValue(request.headers.cookie, SESSION_COOKIE);
    if (cookie === undefined) return 'none';
    if (!accounts) return null;
    const session = await sessionOf(accounts.users, cookie, now);
    if (!session) return null;
    return { kind: 'session', actor: `user:${session.user.username}`, role: session.user.role, userId: session.user.id, username: session.user.username, sessionId: session.id, csrfToken: session.csrfToken };
  };

  const authorizer = (access: Access, routeUrl: string | undefined) =>
    async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
      const source = sourceKey(request.ip);
      const now = options.now();
      const wait = options.throttle.lockedFor(source, now);
      // Locked out: refused without looking at the credentials, so guessing on is no use.
      if (wait > 0) return refuse(request, reply, 429, { 'retry-after': String(Math.ceil(wait / 1000)) }, 'TOO_MANY_FAILED_AUTHENTICATIONS', 'too many failed authentications from this address; retry later');
      const principal = await authenticate(request, now);
      if (principal === null || principal === 'none') {
        options.throttle.recordFailure(source, now);
        // The credentials given are never echoed or logged.
        return refuse(request, reply, 401, { 'www-authenticate': 'Bearer realm="depot"' }, 'UNAUTHORIZED', principal === 'none' ? 'a valid bearer token is required' : 'a valid bearer token is required (the one given is wrong, expired or revoked, or the session ended)');
      }
      principals.set(request, principal);
      if (access === 'public') return undefined;
      if (principal.kind === 'session' && UNSAFE(request.method)) {
        const csrf = request.headers['x-csrf-token'];
        if (typeof csrf !== 'string' || !timingSafeEqual(digest(csrf), digest(principal.csrfToken!))) {
          return problem(reply, 403, 'CSRF_TOKEN_REQUIRED', 'Forbidden', 'a console request that changes something needs the X-CSRF-Token header of the session');
        }
      }
      if (!roleAllows(principal.role, access)) {
        if (hasBody(request)) reply.header('connection', 'close');
        return problem(reply, 403, 'FORBIDDEN', 'Forbidden', `${request.method} ${routeUrl ?? 'this route'} needs the ${access} role; ${principal.actor} has ${principal.role}`);
      }
      return undefined;
    };

  app.addHook('onRoute', (route: RouteOptions) => {
    const config: AccessConfig | undefined = route.config;
    for (const method of [route.method].flat()) {
      const access: Access = config?.public === true ? 'public' : (config?.role ?? defaultAccess(method, route.url));
      seen.push({ method, url: route.url, public: access === 'public', access });
    }
    if (config?.public === true) return;
    const methods = [route.method].flat();
    // One method per route in Depot; with several, the strictest access of them guards all.
    const access = methods.map((m) => config?.role ?? defaultAccess(m, route.url)).sort((a, b) => RANK[b] - RANK[a])[0]!;
    const check = authorizer(access, route.url);
    checks.add(check);
    // A HEAD route Fastify derives from a GET route arrives with the GET route's check: one check only.
    const existing = route.onRequest === undefined ? [] : [route.onRequest].flat();
    route.onRequest = [check, ...existing.filter((hook) => !checks.has(hook as never))];
  });

  // No route matched: the same authentication, before the body is read (then 404).
  const unmatched = authorizer('viewer', undefined);
  app.addHook('onRequest', async (request, reply) => (request.is404 ? unmatched(request, reply) : undefined));

  // The audit log: every unsafe request by a known principal, whatever its outcome.
  if (accounts) {
    app.addHook('onResponse', async (request, reply) => {
      const principal = principals.get(request);
      if (!principal || !UNSAFE(request.method) || request.is404) return;
      const params = request.params as Record<string, string> | undefined;
      const target = params && Object.keys(params).length > 0 ? JSON.stringify(params) : null;
      await accounts.audit
        .record({ at: options.now(), actor: principal.actor, role: principal.role, action: `${request.method} ${request.routeOptions.url ?? '?'}`, target, outcome: String(reply.statusCode), source: sourceKey(request.ip), detail: null })
        .catch((error: unknown) => process.emitWarning(`audit log: ${(error as Error).message}`));
    });
  }
}

/** The session a cookie value "<id>.<secret>" names, if live. */
async function sessionOf(users: SqliteUserRepository, cookie: string, now: number) {
  const m = /^([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{32})$/.exec(cookie);
  if (!m) return null;
  const session = await users.session(m[1]!);
  if (!session || !timingSafeEqual(digest(m[2]!), Buffer.from(session.secretHash)) || session.expiresAt <= now) return null;
  const user = await users.byId(session.userId);
  if (!user || user.disabled) return null;
  return { id: session.id, csrfToken: session.csrfToken, user };
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

// ---- secrets: tokens, sessions, passwords

/** A new random identifier (16 base64url characters, 96 bits). */
export function newId(): string {
  return randomBytes(12).toString('base64url');
}

/** A new API token: what the holder gets once, and what is kept. */
export function newApiToken(): { id: string; token: string; secretHash: Uint8Array } {
  const id = newId();
  const secret = randomBytes(24).toString('base64url');
  return { id, token: `dpt_${id}_${secret}`, secretHash: digest(secret) };
}

/** A new console session: the cookie value, what is kept, and its CSRF token. */
export function newSession(): { id: string; cookie: string; secretHash: Uint8Array; csrfToken: string } {
  const id = newId();
  const secret = randomBytes(24).toString('base64url');
  return { id, cookie: `${id}.${secret}`, secretHash: digest(secret), csrfToken: randomBytes(24).toString('base64url') };
}

/**
 * scrypt (RFC 7914), memory-hard: N = 2^15, r = 8, p = 1 uses 32 MiB and takes some tens of
 * milliseconds per guess; a 16-byte random salt; 32-byte output. Stored as
 * "scrypt$N$r$p$salt$hash" so the cost can be raised later and old hashes still verify.
 */
const SCRYPT = { N: 1 << 15, r: 8, p: 1, keylen: 32 };

function scryptAsync(password: string, salt: Buffer, N: number, r: number, p: number, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password.normalize('NFC'), salt, keylen, { N, r, p, maxmem: 256 * N * r }, (error, key) => (error ? reject(error) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p, SCRYPT.keylen);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Whether `password` matches `stored`; a malformed hash matches nothing. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (!(N >= 2 && N <= 1 << 20 && r >= 1 && r <= 32 && p >= 1 && p <= 16)) return false;
  const expectedKey = Buffer.from(parts[5]!, 'base64url');
  const key = await scryptAsync(password, Buffer.from(parts[4]!, 'base64url'), N, r, p, expectedKey.length || 32);
  return key.length === expectedKey.length && timingSafeEqual(key, expectedKey);
}

/** Compared with when a login names no user, so an unknown name costs as long as a wrong password. */
export const DUMMY_PASSWORD_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return (length !== undefined && length !== '0') || request.headers['transfer-encoding'] !== undefined;
}

export function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
